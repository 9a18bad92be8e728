"""A real model: the Gemma 3 270M GGUF through llama.cpp, as a standalone pool and behind the router."""
from __future__ import annotations

import grpc
import pytest

from ponder.common.config import LlamaCppBackend, PonderConfig, PoolConfig, RouterConfig, Thinking
from ponder.common.grpcutil import stop_server
from ponder.common.telemetry import Tracing
from ponder.pools.models import ensure_default_gguf
from ponder.pools.servicer import SERVICE, start_standalone
from ponder.router.server import start_router
from ponder.v1 import common_pb2, pool_pb2, pool_pb2_grpc, router_pb2, router_pb2_grpc

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gguf() -> str:
    return str(ensure_default_gguf())


@pytest.fixture
async def llama_stack(gguf):
    tracing = Tracing("ponder-test")
    backend = LlamaCppBackend(model_path=gguf, n_ctx=512, n_threads=2)
    cfg = PonderConfig(
        pools=[
            PoolConfig(name="small", backend=backend),
            PoolConfig(name="reasoning", tier="reasoning", backend=backend, thinking=Thinking(budget_tokens=6)),
        ],
        router=RouterConfig(port=0),
    )
    servers = []
    for p in cfg.pools:
        server, port, engine, health = await start_standalone(p, "127.0.0.1:0", tracing)
        servers.append((server, engine, health))
        p.address = f"127.0.0.1:{port}"
    router = await start_router(cfg, None, None, tracing, address="127.0.0.1:0")
    channel = grpc.aio.insecure_channel(router.address)
    yield cfg, router_pb2_grpc.RouterStub(channel), channel
    await channel.close()
    await router.stop(0)
    for server, engine, health in servers:
        await stop_server(server, health, [SERVICE], 0)
        await engine.close()


def _greedy(n: int) -> common_pb2.SamplingParams:
    return common_pb2.SamplingParams(max_tokens=n, temperature=0.0, seed=1)


async def test_pool_generates_real_tokens(llama_stack):
    cfg, _, _ = llama_stack
    async with grpc.aio.insecure_channel(cfg.pool("small").address) as ch:
        pool = pool_pb2_grpc.ModelPoolStub(ch)
        r = await pool.Generate(pool_pb2.PoolGenerateRequest(prompt="The capital of France is", sampling=_greedy(6)), timeout=60)
        again = await pool.Generate(pool_pb2.PoolGenerateRequest(prompt="The capital of France is", sampling=_greedy(6)), timeout=60)
        stats = await pool.Stats(pool_pb2.PoolStatsRequest(), timeout=5)
    assert not r.simulated and r.model == "gemma-3-270m-q4_k_m.gguf"
    assert r.output_tokens == 6 and r.prompt_tokens >= 5 and r.text.strip()
    assert again.text == r.text  # greedy decoding is deterministic
    assert stats.requests_total == 2 and stats.output_tokens_total == 12 and stats.backend == "llamacpp"


async def test_router_streams_real_tokens(llama_stack):
    _, stub, _ = llama_stack
    req = router_pb2.GenerateRequest(prompt="The capital of France is", sampling=_greedy(6))
    pieces, final = [], None
    async for ev in stub.GenerateStream(req, timeout=60):
        if ev.HasField("delta"):
            pieces.append(ev.delta.text)
        else:
            final = ev.final
    unary = await stub.Generate(req, timeout=60)
    assert final is not None and not final.simulated
    assert "".join(pieces) == final.text == unary.text
    assert final.usage.output_tokens == 6
    assert final.usage.compute_units == pytest.approx(0.1 * final.usage.prompt_tokens + 6)


async def test_reasoning_pool_thinks_then_answers(llama_stack):
    _, stub, _ = llama_stack
    req = router_pb2.GenerateRequest(prompt="Solve step by step: 2 + 2 =", sampling=_greedy(4))
    thinking, answer, final = [], [], None
    async for ev in stub.GenerateStream(req, timeout=60):
        if ev.HasField("delta"):
            (thinking if ev.delta.thinking else answer).append(ev.delta.text)
        else:
            final = ev.final
    assert final.plan.pool == "reasoning" and final.plan.strategy == "think" and final.plan.thinking_budget == 6
    assert final.usage.thinking_tokens <= 6 and final.usage.thinking_tokens >= 1
    answer_tokens = final.usage.output_tokens - final.usage.thinking_tokens
    assert answer_tokens == 4 if final.finish_reason == "length" else 1 <= answer_tokens <= 4
    assert "".join(answer) == final.text


async def test_max_tokens_over_pool_limit_is_invalid_argument(llama_stack):
    _, stub, _ = llama_stack
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.Generate(
            router_pb2.GenerateRequest(prompt="hi", sampling=common_pb2.SamplingParams(max_tokens=5000)), timeout=10
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details().startswith("sampling.max_tokens")


async def test_stream_coalesces_tokens_after_the_first(gguf):
    """The first token leaves at once; later ones in chunks at least stream_interval_ms apart.

    Judged on arrival times, not on chunk counts, so a slow (loaded) machine
    cannot make it fail: without coalescing, 24 tokens at tens of tokens/s
    would arrive far closer together than 200 ms."""
    import asyncio

    from ponder.pools.backends.base import Delta, Done, GenParams
    from ponder.pools.backends.llamacpp import LlamaCppEngine

    interval_s = 0.2
    chunked = LlamaCppEngine(LlamaCppBackend(model_path=gguf, n_ctx=256, n_threads=2, stream_interval_ms=200))
    single = LlamaCppEngine(LlamaCppBackend(model_path=gguf, n_ctx=256, n_threads=2, stream_interval_ms=0))
    params = GenParams(prompt="Once upon a time", max_tokens=24, temperature=0.0)
    loop = asyncio.get_running_loop()
    try:
        outs, arrivals = [], []
        for engine in (chunked, single):
            items, times = [], []
            async for i in engine.stream(params):
                items.append(i)
                times.append(loop.time())
            outs.append(items)
            arrivals.append(times)
    finally:
        await chunked.close()
        await single.close()
    (c_items, s_items) = outs
    c_times = [t for i, t in zip(c_items, arrivals[0]) if isinstance(i, Delta)]
    c_deltas = [i for i in c_items if isinstance(i, Delta)]
    s_deltas = [i for i in s_items if isinstance(i, Delta)]
    assert c_deltas[0].tokens == 1
    assert len(s_deltas) == 24 and len(c_deltas) >= 2
    gaps = [b - a for a, b in zip(c_times[1:], c_times[2:])]
    assert all(g >= interval_s - 0.02 for g in gaps), gaps
    assert sum(d.tokens for d in c_deltas) == 24 == c_items[-1].output_tokens
    assert isinstance(c_items[-1], Done)
    assert "".join(d.text for d in c_deltas) == "".join(d.text for d in s_deltas)
