"""``pool:NAME``: samples from a ponder ModelPool over gRPC (``ModelPool.Generate``).

One ``PoolClient`` (one kept-open channel) per pool, shared by every sample;
each sample is one Generate call with its own seed. Through Ray Serve's gRPC
proxy the call needs the metadata ("application", NAME); a standalone pool
needs none. At most ``max_in_flight`` calls are outstanding, so one vote
cannot flood a pool.
"""
from __future__ import annotations

import asyncio
from typing import Sequence

from ponder.common import sampling
from ponder.common.config import Cost
from ponder.common.errors import Aborted, DeadlineExceeded, PonderError, PoolUnavailable, ResourceExhausted, Unavailable
from ponder.pools.client import PoolClient
from ponder.v1 import common_pb2, pool_pb2
from ponder.voting.errors import SamplerRefused
from ponder.voting.samplers.base import Sample, Sampler
from ponder.voting.tasks.base import StepPrompt

# Error categories worth retrying; any other refusal fails the step at once.
TRANSIENT = (Unavailable, ResourceExhausted, DeadlineExceeded, Aborted)


class PoolSampler(Sampler):
    def __init__(
        self,
        pool: str,
        address: str,
        metadata: Sequence[tuple[str, str]] = (),
        cost: Cost | None = None,
        temperature: float = sampling.TEMPERATURE,
        top_p: float = sampling.TOP_P,
        top_k: int = sampling.TOP_K,
        timeout_s: float = 120.0,
        max_in_flight: int = 64,
    ):
        self.pool, self.address = pool, address
        self.name = f"pool:{pool}"
        self.cost = cost or Cost()
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.timeout_s = timeout_s
        self.client = PoolClient(pool, address, route=metadata)
        self._slots = asyncio.Semaphore(max_in_flight)

    def request(self, prompt: StepPrompt, seed: int) -> pool_pb2.PoolGenerateRequest:
        return pool_pb2.PoolGenerateRequest(
            request_id=f"vote-{prompt.step}-{seed}",
            prompt=prompt.text,
            sampling=common_pb2.SamplingParams(
                max_tokens=prompt.max_tokens,
                temperature=self.temperature,
                top_p=self.top_p,
                top_k=self.top_k,
                stop=list(prompt.stop),
                seed=seed,
            ),
        )

    async def sample(self, prompt: StepPrompt, seed: int) -> Sample:
        async with self._slots:
            try:
                r = await self.client.generate(self.request(prompt, seed), self.timeout_s)
            except TRANSIENT as e:
                raise PoolUnavailable(self.pool, e.message) from None
            except PonderError as e:
                raise SamplerRefused(self.name, e.message) from None
        return Sample(
            r.text, r.prompt_tokens, r.output_tokens, r.finish_reason,
            self.cost.units(r.prompt_tokens, r.output_tokens), r.simulated,
        )

    async def close(self) -> None:
        await self.client.close()
