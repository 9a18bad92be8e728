"""Breaker state in the router's Status: per pool closed / open / half_open, consecutive failures,
since when, and seconds to the next probe (pools are test doubles; the clock is injected)."""
from __future__ import annotations

import time

import pytest

from ponder.common.errors import PoolUnavailable
from ponder.router.convert import breaker_to_proto
from ponder.router.resilience import CLOSED, HALF_OPEN, OPEN, Breakers
from ponder.v1 import router_pb2

from test_failover import Clock
from test_router_servicer import FakeClients, FakeContext, FakePool, servicer


def test_snapshot_follows_the_state_machine():
    clock = Clock()
    breakers = Breakers(failure_threshold=2, open_s=10.0, clock=clock)
    assert breakers.snapshot("small") == breakers.snapshot("small")  # a pool never called: no breaker is made
    s = breakers.snapshot("small")
    assert (s.state, s.failures, s.since_s_ago, s.retry_after_s, s.opened_total) == (CLOSED, 0, None, 0.0, 0)
    b = breakers["small"]
    clock.t = 5.0
    b.failure()
    s = breakers.snapshot("small")
    assert (s.state, s.failures, s.since_s_ago) == (CLOSED, 1, None)
    clock.t = 7.0
    b.failure()
    clock.t = 9.0
    s = breakers.snapshot("small")
    assert (s.state, s.failures, s.since_s_ago, s.retry_after_s, s.opened_total) == (OPEN, 2, 2.0, 8.0, 1)
    clock.t = 20.0
    s = breakers.snapshot("small")
    assert (s.state, s.since_s_ago, s.retry_after_s) == (HALF_OPEN, 3.0, 0.0)  # half-open since 17
    b.begin()
    b.success()
    clock.t = 21.5
    s = breakers.snapshot("small")
    assert (s.state, s.failures, s.since_s_ago, s.opened_total) == (CLOSED, 0, 1.5, 1)


def test_breaker_proto_carries_wall_clock_since():
    clock = Clock()
    breakers = Breakers(failure_threshold=1, open_s=30.0, clock=clock)
    assert breaker_to_proto(breakers.snapshot("x"), now_unix_s=1000.0).since_unix_s == 0.0
    breakers["x"].failure()
    clock.t = 4.0
    m = breaker_to_proto(breakers.snapshot("x"), now_unix_s=1000.0)
    assert (m.state, m.consecutive_failures, m.since_unix_s, m.retry_after_s, m.opened_total) == ("open", 1, 996.0, 26.0, 1)


async def test_status_reports_each_pools_breaker():
    pools = FakeClients(small=FakePool("small", error=PoolUnavailable("small", "down")), reasoning=FakePool("reasoning"))
    svc, _ = servicer({"resilience": {"breaker_failures": 2, "max_retries_per_request": 0}}, pools)
    before = time.time()
    for _ in range(2):
        with pytest.raises(PoolUnavailable):
            await svc.Generate(router_pb2.GenerateRequest(prompt="hello"), FakeContext())
    st = await svc.Status(router_pb2.StatusRequest(), FakeContext())
    by = {p.name: p.breaker for p in st.pools}
    assert by["small"].state == "open" and by["small"].consecutive_failures == 2 and by["small"].opened_total == 1
    assert before - 1 <= by["small"].since_unix_s <= time.time() + 1 and by["small"].retry_after_s > 0
    assert by["reasoning"].state == "closed" and by["reasoning"].since_unix_s == 0.0
