"""Proto <-> domain mapping for the pool service (no I/O)."""
from __future__ import annotations

from ponder.pools.engine import PoolDelta, PoolRequest, PoolResult
from ponder.v1 import common_pb2, pool_pb2


def request_from_proto(msg: pool_pb2.PoolGenerateRequest) -> PoolRequest:
    s = msg.sampling
    return PoolRequest(
        prompt=msg.prompt,
        max_tokens=s.max_tokens if s.HasField("max_tokens") else None,
        temperature=s.temperature if s.HasField("temperature") else None,
        top_p=s.top_p if s.HasField("top_p") else None,
        top_k=s.top_k if s.HasField("top_k") else None,
        stop=tuple(s.stop),
        seed=s.seed if s.HasField("seed") else None,
        messages=tuple((m.role, m.content) for m in msg.messages),
        thinking_budget=msg.thinking_budget,
        request_id=msg.request_id,
        soft_thoughts=msg.soft_thoughts if msg.HasField("soft_thoughts") else None,
    )


def result_to_proto(r: PoolResult) -> pool_pb2.PoolGenerateResponse:
    return pool_pb2.PoolGenerateResponse(
        text=r.text,
        thinking=r.thinking,
        finish_reason=r.finish_reason,
        prompt_tokens=r.prompt_tokens,
        output_tokens=r.output_tokens,
        thinking_tokens=r.thinking_tokens,
        latency_ms=r.latency_ms,
        time_to_first_token_ms=r.ttft_ms,
        model=r.model,
        simulated=r.simulated,
        soft_thought_tokens=r.soft_thought_tokens,
        assistant_tokens=r.assistant_tokens,
        assistant_ms=r.assistant_ms,
        assistant_cu=r.assistant_cu,
    )


def chunk_to_proto(item: PoolDelta | PoolResult) -> pool_pb2.PoolGenerateChunk:
    if isinstance(item, PoolResult):
        return pool_pb2.PoolGenerateChunk(final=result_to_proto(item))
    return pool_pb2.PoolGenerateChunk(delta=common_pb2.TokenDelta(text=item.text, thinking=item.thinking))


def stats_to_proto(stats: dict) -> pool_pb2.PoolStats:
    return pool_pb2.PoolStats(**stats)
