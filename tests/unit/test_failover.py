"""Failover without loss: retry budget, circuit breakers seen by the planner, retries of outages
before the first token, and a broken stream's clear end with its partial usage. Pools are
test doubles (no network); the same over real gRPC is in tests/integration/test_failover_grpc.py."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ponder.common.config import parse_config
from ponder.common.errors import PoolUnavailable
from ponder.router.dispatch import PARTIAL_USAGE_KEY, StreamInterrupted
from ponder.router.policies.base import build_policy
from ponder.router.resilience import CLOSED, HALF_OPEN, OPEN, RETRY_PUSHBACK_KEY, CircuitBreaker, CircuitOpen, RetryBudget
from ponder.router.types import Request
from ponder.v1 import pool_pb2, router_pb2

from test_router_servicer import FakeClients, FakeContext, FakePool, Records, servicer


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@given(st.lists(st.booleans(), max_size=500), st.floats(0, 1), st.floats(1, 50))
@settings(max_examples=200, deadline=None)
def test_retries_never_exceed_the_ratio_of_requests(ops, ratio, burst):
    b = RetryBudget(ratio, burst)
    for is_request in ops:
        b.deposit() if is_request else b.try_spend()
        assert b.retries <= ratio * b.requests + 1e-9
    assert b.retries + b.refused == ops.count(False)


def test_breaker_opens_after_consecutive_failures_then_probes_once_and_closes():
    clock = Clock()
    br = CircuitBreaker(failure_threshold=3, open_s=10, clock=clock)
    br.failure(), br.failure(), br.success(), br.failure(), br.failure()
    assert br.state == CLOSED  # a success in between resets the count
    br.failure()
    assert br.state == OPEN and not br.available() and br.retry_after_s() == 10
    clock.t = 10
    assert br.available() and br.state == HALF_OPEN
    br.begin()
    assert not br.available()  # one probe at a time
    br.failure()
    assert br.state == OPEN and br.retry_after_s() == 10 and br.opened_count == 2
    clock.t = 20
    br.begin(), br.success()
    assert br.state == CLOSED and br.available()


def test_an_abandoned_probe_frees_the_half_open_slot():
    clock = Clock()
    br = CircuitBreaker(1, 5, clock)
    br.failure()
    clock.t = 5
    br.begin()
    assert not br.available()
    br.abandon()
    assert br.available() and br.state == HALF_OPEN


async def test_planner_skips_a_pool_whose_breaker_is_open_and_refuses_when_all_are():
    cfg = parse_config({"routing": {"resilience": {"breaker_failures": 1}}})
    policy = build_policy(cfg)
    breakers = policy.catalog.failover.breakers
    breakers["small"].failure()
    plan = await policy.plan(Request(request_id="r1", prompt="hello"))
    assert plan.pool == "reasoning" and all(c.pool != "small" for c in plan.candidates)
    breakers["reasoning"].failure()
    with pytest.raises(CircuitOpen) as ei:
        await policy.plan(Request(request_id="r1", prompt="hello"))
    assert ei.value.pools == ["reasoning", "small"]
    (key, ms), = ei.value.trailing_metadata()
    assert key == RETRY_PUSHBACK_KEY and 9000 <= int(ms) <= 10000


class Flaky(FakePool):
    """Fails its first ``failures`` calls with an outage, then answers."""

    def __init__(self, name, failures):
        super().__init__(name)
        self.failures = failures

    async def generate(self, req, timeout_s):
        self.calls.append(req)
        if len(self.calls) <= self.failures:
            raise PoolUnavailable(self.name, "replica restarting")
        return pool_pb2.PoolGenerateResponse(text="ok", finish_reason="stop", prompt_tokens=10, output_tokens=4)


async def test_an_outage_before_the_first_token_is_retried_within_the_budget():
    resilience = {"retry_budget_ratio": 1.0, "retry_backoff_ms": 1}
    pools = FakeClients(small=Flaky("small", 1), reasoning=FakePool("reasoning"))
    svc, _ = servicer({"resilience": resilience}, pools)
    resp = await svc.Generate(router_pb2.GenerateRequest(request_id="r1", prompt="hello"), FakeContext())
    assert resp.text == "ok" and resp.plan.pool == "small" and "retried after an outage" in resp.plan.reason
    assert len(pools["small"].calls) == 2
    assert svc.state.policy.catalog.failover.retries.retries == 1


async def test_no_retry_when_the_budget_is_spent():
    # ratio 0.1: the first request holds 0.1 of a token, so its outage is not retried.
    pools = FakeClients(small=Flaky("small", 1), reasoning=FakePool("reasoning"))
    svc, _ = servicer({"resilience": {"retry_backoff_ms": 1}}, pools)
    with pytest.raises(PoolUnavailable):
        await svc.Generate(router_pb2.GenerateRequest(request_id="r1", prompt="hello"), FakeContext())
    assert len(pools["small"].calls) == 1 and svc.state.policy.catalog.failover.retries.refused == 1


async def test_repeated_outages_open_the_breaker_and_the_planner_moves_on():
    rec = Records()
    pools = FakeClients(small=FakePool("small", error=PoolUnavailable("small", "down")), reasoning=FakePool("reasoning"))
    svc, _ = servicer({"resilience": {"breaker_failures": 2, "max_retries_per_request": 0}}, pools, outcomes=rec)
    for _ in range(2):
        with pytest.raises(PoolUnavailable):
            await svc.Generate(router_pb2.GenerateRequest(request_id="r1", prompt="hello"), FakeContext())
    resp = await svc.Generate(router_pb2.GenerateRequest(request_id="r1", prompt="hello"), FakeContext())
    assert resp.plan.pool == "reasoning" and len(pools["small"].calls) == 2
    assert [r["status"] for r in rec.items] == ["UNAVAILABLE", "UNAVAILABLE", "OK"]


class DiesMidStream(FakePool):
    async def stream(self, req, timeout_s):
        for t in ("The ", "answer ", "is"):
            yield pool_pb2.PoolGenerateChunk(delta={"text": t})
        raise PoolUnavailable(self.name, "replica gone (ActorDiedError)")


async def test_a_stream_that_dies_after_tokens_ends_with_aborted_and_partial_usage():
    rec = Records()
    pools = FakeClients(small=DiesMidStream("small"), reasoning=FakePool("reasoning"))
    svc, _ = servicer({"fallback_pool": "reasoning", "resilience": {"retry_budget_ratio": 1.0}}, pools, outcomes=rec)
    got = []
    with pytest.raises(StreamInterrupted) as ei:
        async for ev in svc.GenerateStream(router_pb2.GenerateRequest(request_id="r1", prompt="hello"), FakeContext()):
            got.append(ev.delta.text)
    assert got == ["The ", "answer ", "is"]  # no retry, no fallback: the client already saw output
    assert ei.value.usage["output_tokens"] == 3 and ei.value.usage["compute_units"] > 3
    (key, value), = ei.value.trailing_metadata()
    assert key == PARTIAL_USAGE_KEY and '"output_tokens":3' in value
    assert rec.items[0]["status"] == "ABORTED"
    assert pools["reasoning"].calls == []


async def test_budget_controller_steps_locally_while_redis_is_down():
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from ponder.common.redis_server import free_port
    from ponder.router.budget import BudgetController, dual_step

    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    try:
        bc = BudgetController(down, target_compute_units=100.0, initial_nu=0.5)
        lam = await bc.observe(300.0)
        assert bc.local_steps == 1 and bc.nu == pytest.approx(dual_step(0.5, 300.0, 100.0, 0.02, 100.0))
        assert lam == pytest.approx(bc.nu / 100.0)
        assert await bc.refresh(force=True) == lam  # a failed read keeps the cached value
    finally:
        await down.aclose()


async def test_request_log_has_no_prompt_unless_switched_on(caplog):
    import logging

    caplog.set_level(logging.INFO, logger="ponder.requests")
    svc, _ = servicer()
    await svc.Generate(router_pb2.GenerateRequest(prompt="secret question", request_id="log-1"), FakeContext())
    (line,) = [r.getMessage() for r in caplog.records if r.name == "ponder.requests"]
    assert "log-1" in line and "tenant=default" in line and "secret question" not in line
    caplog.clear()
    svc.state.cfg.router.log_prompts = True
    await svc.Generate(router_pb2.GenerateRequest(prompt="secret question", request_id="log-2"), FakeContext())
    assert "secret question" in [r.getMessage() for r in caplog.records if r.name == "ponder.requests"][0]


def test_tenant_metric_labels_are_bounded():
    from ponder.common.config import parse_config as pc
    from ponder.router import metrics as m

    rm = m.RouterMetrics(pc({}).pools)
    for i in range(m.MAX_TENANT_LABELS + 5):
        rm.tenant_answered(f"t{i}", "OK", 1.0)
    assert rm.registry.get_sample_value("ponder_router_tenant_requests_total", {"tenant": "other", "code": "OK"}) == 5
    assert rm.registry.get_sample_value("ponder_router_tenant_compute_units_total", {"tenant": "t0"}) == 1.0
