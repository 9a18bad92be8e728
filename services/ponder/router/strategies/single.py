"""``single``: one sample, the pool answers directly. ``think``: one sample after a
thinking phase of the plan's ``thinking_budget`` tokens.

The pool runs the thinking phase (native thinking on reasoning models, a
step-by-step prompt on base models) and reports thinking tokens apart.

Think candidates exist only on pools with a ``thinking`` config. Without a
thinking hint their budgets are the pool's ``budget_tokens`` times each of
``routing.thinking_multipliers`` plus halvings of the smallest down to
``MIN_THINKING_TOKENS`` (cheaper variants a cap can fall back to); with
``hints.thinking_budget`` T, they are T and its halvings, each halving marked
as clamped. Budgets are capped at ``routing.max_thinking_tokens``.
"""
from __future__ import annotations

import contextlib
from typing import AsyncIterator

from ponder.common.config import PoolConfig
from ponder.router.strategies.accuracy import thinking_accuracy
from ponder.router.strategies.base import Gains, StreamDelta, Strategy, draw
from ponder.router.types import Answer, Candidate, Plan, Request, SampleResult

MIN_THINKING_TOKENS = 16


class Single(Strategy):
    name = "single"

    def candidates(self, req: Request, pool: PoolConfig, catalog) -> list[Candidate]:
        return [catalog.estimate(req, pool.name, self.name, 1, 0)]

    async def run(self, req: Request, plan: Plan, pools, timeout_s: float, stream: bool) -> AsyncIterator[StreamDelta | Answer]:
        async with contextlib.aclosing(draw(req, plan, pools[plan.pool], timeout_s, 0, stream)) as items:
            async for item in items:
                if isinstance(item, SampleResult):
                    yield Answer(item.text, item.finish_reason, [item], item.model, item.simulated, item.ttft_ms)
                else:
                    yield item


def halvings(top: int, floor: int) -> list[int]:
    """top, top/2, top/4, … while >= floor (top itself always included)."""
    out, t = [top], top // 2
    while t >= floor:
        out.append(t)
        t //= 2
    return out


class Think(Single):
    name = "think"

    def candidates(self, req: Request, pool: PoolConfig, catalog) -> list[Candidate]:
        th = pool.thinking
        if th is None:
            return []
        cap = catalog.routing.max_thinking_tokens
        out = []
        if req.hint_thinking_budget is not None:
            asked = req.hint_thinking_budget
            for t in (halvings(asked, MIN_THINKING_TOKENS) if asked else [0]):
                c = catalog.estimate(req, pool.name, self.name, 1, t)
                if t != asked:
                    c.clamped = f"hints.thinking_budget {asked} -> {t}"
                out.append(c)
            return out
        budgets = {min(cap, max(1, int(th.budget_tokens * m))) for m in catalog.routing.thinking_multipliers}
        budgets.update(t for t in halvings(min(budgets), MIN_THINKING_TOKENS) if t <= cap)
        return [catalog.estimate(req, pool.name, self.name, 1, t) for t in sorted(budgets)]

    def accuracy(self, cand: Candidate, p: float, gains: Gains) -> tuple[float, str]:
        g, src = gains.gain(self.name, cand.pool)
        return thinking_accuracy(p, cand.thinking_budget, g, gains.ref_tokens), f"gain {g:.2f} ({src})"
