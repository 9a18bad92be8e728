"""Running a plan: the chosen strategy draws from its pool; outages are retried within a budget,
then fall back once; a failure after output was sent ends the call with its partial usage.

The deadline to the pool is the lowest of ``routing.default_timeout_s``, the
client's remaining deadline and ``budget.max_latency_ms``. When the planned
pool is unavailable (``PoolUnavailable``: down, not deployed, replica gone)
before any output reached the client, the request is planned again — the
same policy and filters, restricted to ``routing.fallback_pool`` — and run
there; the plan records why. A hinted pool, a task or output already sent
never falls back, and a fallback that fits no cap re-raises the outage.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import time
from typing import AsyncIterator, Callable

from ponder.common.errors import (
    Aborted,
    BudgetInfeasible,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    PoolUnavailable,
    ResourceExhausted,
    Unavailable,
)
from ponder.router.catalog import estimate_tokens
from ponder.router.strategies.base import StreamDelta
from ponder.router.types import Answer, Plan, Request

# Trailing-metadata key of a broken stream's partial usage (JSON object).
PARTIAL_USAGE_KEY = "ponder-partial-usage"


def timeout_s(default_s: float, remaining_s: float | None, req: Request) -> float:
    """Seconds the pool may take; DeadlineExceeded when the client's deadline has already passed."""
    t = default_s
    if remaining_s is not None:
        if remaining_s <= 0:
            raise DeadlineExceeded("router", 0.0)
        t = min(t, remaining_s)
    if req.max_latency_ms is not None:
        t = min(t, req.max_latency_ms / 1000)
    return t


async def fallback_plan(policy, req: Request, plan: Plan, pool: str) -> Plan | None:
    """The plan on ``pool`` for ``req`` under every filter — the same strategy when ``pool``
    offers it within the caps, else the policy's choice there — or None when none fits."""
    for strategy in (req.hint_strategy or plan.strategy, req.hint_strategy):
        try:
            fb = await policy.plan(dataclasses.replace(req, hint_pool=pool, hint_strategy=strategy))
            break
        except (BudgetInfeasible, InvalidArgument, Unavailable):  # Unavailable: its breaker is open
            continue
    else:
        return None
    fb.reason = f"pool {plan.pool!r} unavailable, fell back to {pool!r}: {fb.reason}"
    return fb


class StreamInterrupted(Aborted):
    """The pool failed after output had been sent to the client: the answer is incomplete.

    ABORTED, not UNAVAILABLE, so that a client library does not replay a
    request whose tokens it already showed; the partial usage rides along as
    trailing metadata (``ponder-partial-usage``, JSON) and in the message.
    """

    def __init__(self, pool: str, usage: dict[str, float], cause: str):
        self.pool, self.usage = pool, usage
        super().__init__(
            f"pool {pool!r} failed after output was sent (~{usage['output_tokens']:.0f} output tokens, "
            f"{usage['compute_units']:g} CU); the answer is incomplete: {cause}"
        )

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ((PARTIAL_USAGE_KEY, json.dumps(self.usage, separators=(",", ":"))),)


def partial_usage(cat, req: Request, plan: Plan, deltas: int, chars: int) -> dict[str, float]:
    """Usage of output already sent: prompt as planned, output estimated as the larger of the
    deltas sent and their characters / 4; compute units at the pool's prices (>= 0)."""
    out = max(deltas, estimate_tokens(chars)) if chars else deltas
    prompt = cat.prompt_tokens(req) * plan.samples
    cu = cat.pools[plan.pool].cost.units(prompt, out)
    return {"prompt_tokens": prompt, "output_tokens": out, "compute_units": round(cu, 3)}


@dataclasses.dataclass
class Run:
    """One plan's execution; ``plan`` is replaced when the request falls back.

    An outage before any output (``PoolUnavailable``) is retried on the same
    plan while the pool's breaker stays closed, the request has retries left
    (``routing.resilience.max_retries_per_request``), the router's retry budget
    has a token and the deadline leaves room; then the request falls back to
    ``routing.fallback_pool`` once. After output was sent, any failure becomes
    ``StreamInterrupted`` with the partial usage. Every attempt reports to the
    pool's breaker.
    """

    plan: Plan
    retried: int = 0
    clock: Callable[[], float] = time.monotonic

    async def items(self, state, req: Request, deadline_s: float, stream: bool, tracer) -> AsyncIterator[StreamDelta | Answer]:
        cat = state.policy.catalog
        fo = cat.failover
        fo.retries.deposit()
        t0 = self.clock()
        fell_back = False
        deltas = chars = 0
        while True:
            try:
                left = deadline_s - (self.clock() - t0)
                if left <= 0:
                    raise DeadlineExceeded("router", deadline_s)
                async for item in self._once(state, req, left, stream, tracer):
                    if isinstance(item, StreamDelta):
                        deltas, chars = deltas + 1, chars + len(item.text)
                    yield item
                return
            except PoolUnavailable as e:
                if deltas:
                    raise StreamInterrupted(self.plan.pool, partial_usage(cat, req, self.plan, deltas, chars), str(e)) from e
                if await self._may_retry(fo, deadline_s - (self.clock() - t0)):
                    continue
                fb = state.cfg.routing.fallback_pool
                if fell_back or not fb or fb == self.plan.pool or req.hint_pool or req.task is not None:
                    raise
                new = await fallback_plan(state.policy, req, self.plan, fb)
                if new is None:
                    raise
                self.plan, fell_back = new, True
            except (Unavailable, Internal, ResourceExhausted) as e:
                if deltas:
                    raise StreamInterrupted(self.plan.pool, partial_usage(cat, req, self.plan, deltas, chars), str(e)) from e
                raise

    async def _may_retry(self, fo, left_s: float) -> bool:
        """Whether to retry the same plan now (and wait the jittered backoff if so)."""
        rc = fo.config
        if self.retried >= rc.max_retries_per_request or not fo.breakers[self.plan.pool].available():
            return False
        wait_s = rc.retry_backoff_ms / 1000 * random.uniform(0.5, 1.0)
        if left_s <= wait_s or not fo.retries.try_spend():
            return False
        self.retried += 1
        self.plan.reason = f"{self.plan.reason}; retried after an outage"
        await asyncio.sleep(wait_s)
        return True

    async def _once(self, state, req: Request, deadline_s: float, stream: bool, tracer):
        plan = self.plan
        breaker = state.policy.catalog.failover.breakers[plan.pool]
        run = state.strategies[plan.strategy].run(req, plan, state.clients, deadline_s, stream)
        breaker.begin()
        ok = False
        with tracer.start_as_current_span(
            "router.dispatch", attributes={"ponder.pool": plan.pool, "ponder.strategy": plan.strategy}
        ):
            try:
                async with contextlib.aclosing(run) as items:
                    async for item in items:
                        yield item
                ok = True
            except Unavailable:
                breaker.failure()
                raise
            finally:
                if ok:
                    breaker.success()
                elif breaker.probing:
                    breaker.abandon()
