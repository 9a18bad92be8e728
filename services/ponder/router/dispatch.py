"""Running a plan: the chosen strategy draws from its pool; an unreachable pool falls back once.

The deadline to the pool is the lowest of ``routing.default_timeout_s``, the
client's remaining deadline and ``budget.max_latency_ms``. When the planned
pool is unavailable (``PoolUnavailable``: down, not deployed, replica gone)
before any output reached the client, the request is planned again — the
same policy and filters, restricted to ``routing.fallback_pool`` — and run
there; the plan records why. A hinted pool, a task or output already sent
never falls back, and a fallback that fits no cap re-raises the outage.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import AsyncIterator

from ponder.common.errors import BudgetInfeasible, DeadlineExceeded, InvalidArgument, PoolUnavailable
from ponder.router.strategies.base import StreamDelta
from ponder.router.types import Answer, Plan, Request


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
        except (BudgetInfeasible, InvalidArgument):
            continue
    else:
        return None
    fb.reason = f"pool {plan.pool!r} unavailable, fell back to {pool!r}: {fb.reason}"
    return fb


@dataclasses.dataclass
class Run:
    """One plan's execution; ``plan`` is replaced when the request falls back."""

    plan: Plan

    async def items(self, state, req: Request, deadline_s: float, stream: bool, tracer) -> AsyncIterator[StreamDelta | Answer]:
        produced = False
        try:
            async for item in self._once(state, req, deadline_s, stream, tracer):
                produced = True
                yield item
            return
        except PoolUnavailable:
            fb = state.cfg.routing.fallback_pool
            if produced or not fb or fb == self.plan.pool or req.hint_pool or req.task is not None:
                raise
            new = await fallback_plan(state.policy, req, self.plan, fb)
            if new is None:
                raise
            self.plan = new
        async for item in self._once(state, req, deadline_s, stream, tracer):
            yield item

    async def _once(self, state, req: Request, deadline_s: float, stream: bool, tracer):
        plan = self.plan
        run = state.strategies[plan.strategy].run(req, plan, state.clients, deadline_s, stream)
        with tracer.start_as_current_span(
            "router.dispatch", attributes={"ponder.pool": plan.pool, "ponder.strategy": plan.strategy}
        ):
            async with contextlib.aclosing(run) as items:
                async for item in items:
                    yield item
