"""``sim``: a latency model for load tests and benchmarks. A test double, not a model.

Time to first token ``ttft_ms``, then one token every ``tpot_ms``; at most
``max_concurrency`` requests generate at once and the rest wait, so queueing
behaves like a real engine with a fixed batch size. Every answer says it is
simulated (``simulated=True`` and the text itself).
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

from ponder.common.config import SimBackend
from ponder.pools.backends.base import Backend, Delta, Done, GenParams


class SimulatedBackend(Backend):
    kind = "sim"
    simulated = True

    def __init__(self, cfg: SimBackend):
        self.cfg = cfg
        self._slots = asyncio.Semaphore(cfg.max_concurrency)

    @property
    def model(self) -> str:
        return f"sim(ttft={self.cfg.ttft_ms}ms, tpot={self.cfg.tpot_ms}ms)"

    async def stream(self, params: GenParams) -> AsyncIterator[Delta | Done]:
        n = min(params.max_tokens, self.cfg.output_tokens)
        prompt_tokens = max(1, len(params.prompt) // 4)
        async with self._slots:
            if self.cfg.ttft_ms:
                await asyncio.sleep(self.cfg.ttft_ms / 1000)
            for i in range(n):
                if i and self.cfg.tpot_ms:
                    await asyncio.sleep(self.cfg.tpot_ms / 1000)
                yield Delta("[simulated]" if i == 0 else f" t{i}")
        yield Done(prompt_tokens, n, "length" if n == params.max_tokens else "stop")
