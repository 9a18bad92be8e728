"""The strategy plug-in kind: one async generator, ``run``.

``run`` draws the plan's samples from one pool and yields ``StreamDelta``
items (only when streaming) and finally one ``Answer``. Registry by name;
a duplicate name fails at import.
"""
from __future__ import annotations

import abc
import dataclasses
import time
from typing import AsyncIterator, ClassVar

from ponder.router.clients import PoolClient
from ponder.router.types import Answer, Plan, Request, SampleResult
from ponder.v1 import common_pb2, pool_pb2


@dataclasses.dataclass(slots=True)
class StreamDelta:
    text: str
    sample_index: int
    thinking: bool


class Strategy(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def run(
        self, req: Request, plan: Plan, client: PoolClient, timeout_s: float, stream: bool
    ) -> AsyncIterator[StreamDelta | Answer]:
        """Yield StreamDelta items (when ``stream``) then exactly one Answer."""


_REGISTRY: dict[str, Strategy] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    if cls.name in _REGISTRY:
        raise ValueError(f"strategy {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def get(name: str) -> Strategy:
    from ponder.router.strategies import best_of_n, single  # noqa: F401  (register)

    return _REGISTRY[name]


def pool_request(req: Request, plan: Plan, sample_index: int = 0) -> pool_pb2.PoolGenerateRequest:
    """The pool call for one sample of a plan (pure; unit-tested)."""
    s = req.sampling
    sampling = common_pb2.SamplingParams(stop=list(s.stop))
    if s.max_tokens is not None:
        sampling.max_tokens = s.max_tokens
    if s.temperature is not None:
        sampling.temperature = s.temperature
    if s.top_p is not None:
        sampling.top_p = s.top_p
    if s.top_k is not None:
        sampling.top_k = s.top_k
    if s.seed is not None:
        sampling.seed = (s.seed + sample_index) % 2**64  # distinct but reproducible samples
    return pool_pb2.PoolGenerateRequest(
        request_id=f"{req.request_id}/{sample_index}",
        prompt=req.prompt,
        messages=[common_pb2.ChatMessage(role=r, content=c) for r, c in req.messages],
        sampling=sampling,
        thinking_budget=plan.thinking_budget,
    )


def sample_from_proto(r: pool_pb2.PoolGenerateResponse, duration_ms: float) -> SampleResult:
    return SampleResult(
        text=r.text,
        thinking=r.thinking,
        finish_reason=r.finish_reason,
        prompt_tokens=r.prompt_tokens,
        output_tokens=r.output_tokens,
        thinking_tokens=r.thinking_tokens,
        ttft_ms=r.time_to_first_token_ms,
        model=r.model,
        simulated=r.simulated,
        duration_ms=duration_ms,
    )


async def draw(
    req: Request, plan: Plan, client: PoolClient, timeout_s: float, index: int, stream: bool
) -> AsyncIterator[StreamDelta | SampleResult]:
    """One sample: unary when not streaming (cheaper), else deltas then the result.

    The result's ``duration_ms`` runs from sending the request to receiving the
    result; a consumer that is slow to take the deltas lengthens it.
    """
    preq = pool_request(req, plan, index)
    t0 = time.perf_counter()
    if not stream:
        resp = await client.generate(preq, timeout_s)
        yield sample_from_proto(resp, (time.perf_counter() - t0) * 1000)
        return
    async for chunk in client.stream(preq, timeout_s):
        if chunk.HasField("delta"):
            yield StreamDelta(chunk.delta.text, index, chunk.delta.thinking)
        else:
            yield sample_from_proto(chunk.final, (time.perf_counter() - t0) * 1000)
