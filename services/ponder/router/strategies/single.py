"""``single`` and ``think``: one sample; ``think`` lets the pool think first.

The thinking phase's budget is the plan's ``thinking_budget``; the pool runs
the phase (native thinking on reasoning models, a step-by-step prompt on base
models) and reports thinking tokens apart.
"""
from __future__ import annotations

import contextlib
from typing import AsyncIterator

from ponder.router.clients import PoolClient
from ponder.router.strategies.base import StreamDelta, Strategy, draw, register
from ponder.router.types import Answer, Plan, Request, SampleResult


@register
class Single(Strategy):
    name = "single"

    async def run(
        self, req: Request, plan: Plan, client: PoolClient, timeout_s: float, stream: bool
    ) -> AsyncIterator[StreamDelta | Answer]:
        async with contextlib.aclosing(draw(req, plan, client, timeout_s, 0, stream)) as items:
            async for item in items:
                if isinstance(item, SampleResult):
                    yield Answer(item.text, item.finish_reason, [item], item.model, item.simulated, item.ttft_ms)
                else:
                    yield item


@register
class Think(Single):
    name = "think"
