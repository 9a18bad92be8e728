"""Per-tenant quotas against a real redis-server (clock injected): requests per second, concurrency,
compute units per minute and day; plans cut down to what is left, or refused with retry pushback."""
from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from ponder.common.config import parse_config
from ponder.router.policies.base import build_policy
from ponder.router.quotas import QuotaExceeded, QuotaLeft, Quotas
from ponder.router.resilience import RETRY_PUSHBACK_KEY
from ponder.router.types import Request


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def client(redis_url):
    c = Redis.from_url(redis_url)
    yield c
    await c.aclose()


def cfg_with(**limits):
    return parse_config({"routing": {"quotas": {"tenants": {"acme": limits}}}})


async def test_requests_per_second_window(client):
    tenant = f"t{uuid.uuid4().hex[:8]}"
    cfg = parse_config({"routing": {"quotas": {"default": {"requests_per_s": 2}}}})
    clock = Clock(1_000_000.25)
    q = Quotas(client, clock)
    assert await q.admit(cfg, tenant, "r1", 10) is not None
    await q.admit(cfg, tenant, "r2", 10)
    with pytest.raises(QuotaExceeded) as ei:
        await q.admit(cfg, tenant, "r3", 10)
    assert "requests_per_s=2" in str(ei.value)
    (key, ms), = ei.value.trailing_metadata()
    assert key == RETRY_PUSHBACK_KEY and int(ms) == 750
    clock.t += 1  # the next second
    await q.admit(cfg, tenant, "r4", 10)


async def test_concurrency_is_released_on_settle_and_expires_with_the_deadline(client):
    cfg = parse_config({"routing": {"quotas": {"tenants": {"acme": {"concurrent_requests": 1}}}}})
    await client.delete("ponder:quota:acme:inflight")
    clock = Clock(2_000_000.0)
    q = Quotas(client, clock)
    a = await q.admit(cfg, "acme", "r1", 5)
    with pytest.raises(QuotaExceeded, match="concurrent_requests=1"):
        await q.admit(cfg, "acme", "r2", 5)
    await q._settle(a, 0.0)
    b = await q.admit(cfg, "acme", "r3", 5)
    assert b is not None
    clock.t += 6  # r3 was never settled (a crashed replica): its entry expires with its deadline
    assert await q.admit(cfg, "acme", "r4", 5) is not None


async def test_compute_units_are_reserved_corrected_and_refused_with_the_window_reset(client):
    tenant = f"t{uuid.uuid4().hex[:8]}"
    cfg = parse_config({"routing": {"quotas": {"tenants": {tenant: {"cu_per_minute": 100}}}}})
    clock = Clock(3_000_000.0 - 15)  # 15 s before a minute boundary
    q = Quotas(client, clock)
    a = await q.admit(cfg, tenant, "r1", 5)
    assert a.left.cu_left == 100 and a.left.field == "cu_per_minute"
    await q.reserve(a, 80)
    b = await q.admit(cfg, tenant, "r2", 5)
    assert b.left.cu_left == pytest.approx(20)
    with pytest.raises(QuotaExceeded):
        await q.reserve(b, 30)  # more than is left
    await q._settle(a, 50)  # a cost 50, not the 80 planned
    c = await q.admit(cfg, tenant, "r3", 5)
    assert c.left.cu_left == pytest.approx(50)
    await q.reserve(c, 50)
    with pytest.raises(QuotaExceeded) as ei:
        await q.admit(cfg, tenant, "r4", 5)
    assert ei.value.retry_after_s == pytest.approx(15)


async def test_a_tenant_without_limits_costs_no_redis_call():
    q = Quotas(redis=None)  # would fail on any call
    assert await q.admit(parse_config({}), "anyone", "r1", 5) is None


async def test_the_plan_is_cut_down_to_the_quota_left_or_refused():
    cfg = parse_config({})
    policy = build_policy(cfg)
    hard = "Prove step by step that the sum of the first n odd numbers is n squared. " * 3
    full = await policy.plan(Request(request_id="r", prompt=hard))
    cheapest = min(c.expected_compute_units for c in full.candidates)
    assert full.expected_compute_units > cheapest
    left = QuotaLeft("acme", cheapest + 0.001, "cu_per_minute", 30.0)
    cut = await policy.plan(Request(request_id="r", prompt=hard, quota=left))
    assert cut.expected_compute_units <= left.cu_left
    assert any("tenant quota cu_per_minute" in c.note for c in cut.candidates if not c.feasible)
    with pytest.raises(QuotaExceeded) as ei:
        await policy.plan(Request(request_id="r", prompt=hard, quota=QuotaLeft("acme", cheapest / 2, "cu_per_day", 99.0)))
    assert ei.value.retry_after_s == 99.0
