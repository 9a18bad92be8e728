"""The strategy plug-in kind: a strategy offers candidate plans and runs the one that wins.

- ``candidates(req, pool, catalog)``: the plans this strategy can make on one
  pool, each priced by ``PoolCatalog.estimate`` (expected compute units and
  latency). Policies never invent plans: they filter and score these.
- ``accuracy(candidate, p, gains)``: the candidate's expected P(correct) from
  p = P(one plain sample of its pool is correct), in [0, 1].
- ``run(req, plan, pools, timeout_s, stream)``: draw the plan's samples and
  yield ``StreamDelta`` items (only when streaming), then exactly one ``Answer``.

Strategies are built once per router by ``ponder.router.strategies.build``
from an explicit list, with what they need injected (the voting client).
"""
from __future__ import annotations

import abc
import dataclasses
import time
from typing import TYPE_CHECKING, AsyncIterator, Callable, ClassVar, Protocol

from ponder.common.config import PoolConfig
from ponder.router.types import Answer, Candidate, Plan, Request, SampleResult
from ponder.v1 import common_pb2, pool_pb2

if TYPE_CHECKING:
    from ponder.pools.client import PoolClient
    from ponder.router.catalog import PoolCatalog
    from ponder.router.clients import PoolClients


@dataclasses.dataclass(slots=True)
class StreamDelta:
    text: str
    sample_index: int
    thinking: bool


class Gains(Protocol):
    """Where strategies read fitted or prior gains of test-time compute (per strategy and pool)."""

    ref_tokens: int

    def gain(self, strategy: str, pool: str) -> tuple[float, str]:
        """(logit gain, where it came from: "fitted, n=…" or "prior")."""


class Strategy(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def candidates(self, req: Request, pool: PoolConfig, catalog: "PoolCatalog") -> list[Candidate]:
        """The plans this strategy offers on ``pool`` for ``req``, priced; [] when none."""

    def accuracy(self, cand: Candidate, p: float, gains: Gains) -> tuple[float, str]:
        """(expected P(correct) of ``cand`` in [0, 1], a note on the model used). Default: one sample's p."""
        return p, ""

    @abc.abstractmethod
    def run(
        self, req: Request, plan: Plan, pools: "PoolClients", timeout_s: float, stream: bool
    ) -> AsyncIterator[StreamDelta | Answer]:
        """Yield StreamDelta items (when ``stream``) then exactly one Answer."""


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
        soft_thoughts=plan.strategy == "softcot",  # a SoftCoT pool answers plainly for every other strategy
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
        extra_compute_units=r.assistant_cu,
    )


async def draw(
    req: Request, plan: Plan, client: "PoolClient", timeout_s: float, index: int, stream: bool,
    clock: Callable[[], float] = time.perf_counter,
) -> AsyncIterator[StreamDelta | SampleResult]:
    """One sample: unary when not streaming (cheaper), else deltas then the result.

    The result's ``duration_ms`` runs from sending the request to receiving the
    result (by ``clock``, seconds); a consumer that is slow to take the deltas lengthens it.
    """
    preq = pool_request(req, plan, index)
    t0 = clock()
    if not stream:
        resp = await client.generate(preq, timeout_s)
        yield sample_from_proto(resp, (clock() - t0) * 1000)
        return
    async for chunk in client.stream(preq, timeout_s):
        if chunk.HasField("delta"):
            yield StreamDelta(chunk.delta.text, index, chunk.delta.thinking)
        else:
            yield sample_from_proto(chunk.final, (clock() - t0) * 1000)
