"""``best_of_n``: n samples in parallel, majority vote on the normalised answer.

Candidates: n in ``routing.best_of_n_samples`` without a hint; with
``hints.samples`` N, N and every smaller n >= 1 (the smaller ones marked as
clamped, for caps to fall back to). Answers are compared after normalisation
(case, surrounding whitespace and punctuation, inner whitespace runs); the
largest group wins and ties go to the group whose first member has the lowest
sample index, so the result is deterministic given the samples. When
streaming, deltas of every sample are interleaved, tagged with their index.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import re
from typing import AsyncIterator

from ponder.common.config import PoolConfig
from ponder.router.strategies.accuracy import majority_vote_accuracy
from ponder.router.strategies.base import Gains, StreamDelta, Strategy, draw
from ponder.router.types import Answer, Candidate, Plan, Request, SampleResult

_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _WS.sub(" ", text).strip().strip(".,;:!?\"'").strip().lower()


def vote(samples: list[SampleResult]) -> int:
    """Index of the winning sample: the first member of the largest answer group."""
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i, s in enumerate(samples):
        groups[normalise(s.text)].append(i)
    best = max(groups.values(), key=lambda idx: (len(idx), -idx[0]))
    return best[0]


_DONE = object()


class BestOfN(Strategy):
    name = "best_of_n"

    def candidates(self, req: Request, pool: PoolConfig, catalog) -> list[Candidate]:
        if req.hint_samples is not None:
            asked = req.hint_samples
            out = []
            for n in range(asked, 0, -1):
                c = catalog.estimate(req, pool.name, self.name, n, 0)
                if n != asked:
                    c.clamped = f"hints.samples {asked} -> {n}"
                out.append(c)
            return out
        top = catalog.routing.max_samples
        return [catalog.estimate(req, pool.name, self.name, n, 0) for n in catalog.routing.best_of_n_samples if n <= top]

    def accuracy(self, cand: Candidate, p: float, gains: Gains) -> tuple[float, str]:
        return majority_vote_accuracy(p, cand.samples), ""

    async def run(self, req: Request, plan: Plan, pools, timeout_s: float, stream: bool) -> AsyncIterator[StreamDelta | Answer]:
        client = pools[plan.pool]
        n = plan.samples
        results: list[SampleResult | None] = [None] * n
        q: asyncio.Queue = asyncio.Queue()

        async def one(i: int) -> None:
            async with contextlib.aclosing(draw(req, plan, client, timeout_s, i, stream)) as items:
                async for item in items:
                    if isinstance(item, SampleResult):
                        results[i] = item
                    else:
                        q.put_nowait(item)

        async def all_samples() -> None:
            try:
                await asyncio.gather(*(one(i) for i in range(n)))
            finally:
                q.put_nowait(_DONE)

        task = asyncio.create_task(all_samples())
        try:
            while (item := await q.get()) is not _DONE:
                yield item
            await task  # re-raises a sample's failure
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        done = [r for r in results if r is not None]
        win = vote(done)
        w = done[win]
        yield Answer(w.text, w.finish_reason, done, w.model, w.simulated, min(s.ttft_ms for s in done))
