"""``pool:NAME``: samples from a ponder ModelPool over gRPC (``ModelPool.Generate``).

One channel per pool, shared by every sample; each sample is one Generate
call with its own seed. Through Ray Serve's gRPC proxy the call needs the
metadata ("application", NAME); a standalone pool needs none. At most
``max_in_flight`` calls are outstanding, so one vote cannot flood a pool.
"""
from __future__ import annotations

import asyncio
from typing import Sequence

import grpc

from ponder.common.config import Cost
from ponder.common.errors import PoolUnavailable
from ponder.common.grpcutil import CHANNEL_OPTIONS
from ponder.common.telemetry import inject_metadata
from ponder.v1 import common_pb2, pool_pb2, pool_pb2_grpc
from ponder.voting.errors import SamplerRefused
from ponder.voting.samplers.base import Sample, Sampler
from ponder.voting.tasks.base import StepPrompt

TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
}


class PoolSampler(Sampler):
    def __init__(
        self,
        pool: str,
        address: str,
        metadata: Sequence[tuple[str, str]] = (),
        cost: Cost | None = None,
        temperature: float = 0.7,
        top_p: float = 0.95,
        top_k: int = 40,
        timeout_s: float = 120.0,
        max_in_flight: int = 64,
        channel: grpc.aio.Channel | None = None,
    ):
        self.pool, self.address = pool, address
        self.name = f"pool:{pool}"
        self.metadata = tuple(metadata)
        self.cost = cost or Cost()
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.timeout_s = timeout_s
        self._own_channel = channel is None
        self._channel = channel or grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = pool_pb2_grpc.ModelPoolStub(self._channel)
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
                r = await self._stub.Generate(
                    self.request(prompt, seed), metadata=inject_metadata(self.metadata), timeout=self.timeout_s
                )
            except grpc.aio.AioRpcError as e:
                if e.code() in TRANSIENT:
                    raise PoolUnavailable(self.pool, f"{e.code().name}: {e.details()}") from None
                raise SamplerRefused(self.name, f"{e.code().name}: {e.details()}") from None
        return Sample(
            r.text, r.prompt_tokens, r.output_tokens, r.finish_reason,
            self.cost.units(r.prompt_tokens, r.output_tokens), r.simulated,
        )

    async def close(self) -> None:
        if self._own_channel:
            await self._channel.close()
