"""The real local stack: Ray Serve pools with gRPC ingress, the router, a real redis-server.

One Ray session for the module (starting Ray costs ~10 s). The small pool is
the Gemma GGUF through llama.cpp; the second pool is the sim backend.
"""
from __future__ import annotations

import asyncio

import grpc
import pytest
import redis

from ponder import stack
from ponder.common.config import LlamaCppBackend, PonderConfig, PoolConfig, RouterConfig, ServeConfig, SimBackend
from ponder.common.redis_server import free_port
from ponder.common.telemetry import Tracing
from ponder.pools.models import ensure_default_gguf
from ponder.router.server import start_router
from ponder.v1 import common_pb2, pool_pb2, pool_pb2_grpc, router_pb2, router_pb2_grpc

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def serve_stack():
    cfg = PonderConfig(
        pools=[
            PoolConfig(name="small", backend=LlamaCppBackend(model_path=str(ensure_default_gguf()), n_ctx=512, n_threads=2)),
            PoolConfig(name="fast", tier="reasoning", backend=SimBackend(ttft_ms=1, tpot_ms=1, output_tokens=4)),
        ],
        serve=ServeConfig(grpc_port=free_port(), http_port=free_port(), num_cpus=2),
        router=RouterConfig(port=0),
    )
    address = stack.deploy_pools(cfg, say=lambda m: None)
    yield cfg, address
    stack.shutdown_pools()


@pytest.fixture
async def router(serve_stack, redis_url):
    cfg, address = serve_stack
    handle = await start_router(cfg, address, redis_url, Tracing("ponder-test"), address="127.0.0.1:0")
    channel = grpc.aio.insecure_channel(handle.address)
    yield router_pb2_grpc.RouterStub(channel)
    await channel.close()
    await handle.stop(0)


async def test_serve_pool_answers_over_grpc_ingress(serve_stack):
    _, address = serve_stack
    async with grpc.aio.insecure_channel(address) as ch:
        pool = pool_pb2_grpc.ModelPoolStub(ch)
        req = pool_pb2.PoolGenerateRequest(
            prompt="The capital of France is", sampling=common_pb2.SamplingParams(max_tokens=4, temperature=0)
        )
        r = await pool.Generate(req, metadata=(("application", "small"),), timeout=60)
        chunks = [c async for c in pool.GenerateStream(req, metadata=(("application", "small"),), timeout=60)]
    assert r.output_tokens == 4 and not r.simulated and r.model.endswith(".gguf")
    assert chunks[-1].HasField("final") and chunks[-1].final.text == r.text
    assert "".join(c.delta.text for c in chunks[:-1]) == r.text


async def test_router_through_serve_end_to_end(router, redis_url):
    resp = await router.Generate(
        router_pb2.GenerateRequest(prompt="The capital of France is", sampling=common_pb2.SamplingParams(max_tokens=4)),
        timeout=60,
    )
    assert resp.plan.pool == "small" and resp.usage.output_tokens == 4 and resp.text
    events = [e async for e in router.GenerateStream(
        router_pb2.GenerateRequest(prompt="hi", hints=common_pb2.Hints(pool="fast")), timeout=60)]
    assert events[-1].final.simulated and events[-1].final.usage.output_tokens == 4
    status = await router.Status(router_pb2.StatusRequest(), timeout=10)
    models = {p.name: (p.healthy, p.stats.model, p.stats.simulated) for p in status.pools}
    assert models["small"][0] and models["small"][1] == "gemma-3-270m-q4_k_m.gguf" and not models["small"][2]
    assert models["fast"][0] and models["fast"][2]
    r = redis.Redis.from_url(redis_url)
    for _ in range(50):
        if r.xlen("ponder:outcomes") >= 2:
            break
        await asyncio.sleep(0.05)
    assert r.xlen("ponder:outcomes") >= 2


async def test_pool_errors_keep_their_status_through_serve(serve_stack):
    _, address = serve_stack
    async with grpc.aio.insecure_channel(address) as ch:
        pool = pool_pb2_grpc.ModelPoolStub(ch)
        bad = pool_pb2.PoolGenerateRequest(prompt="hi", sampling=common_pb2.SamplingParams(max_tokens=100000))
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await pool.Generate(bad, metadata=(("application", "fast"),), timeout=30)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "sampling.max_tokens" in exc.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await pool.Generate(bad, metadata=(("application", "missing"),), timeout=30)
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND


async def test_undeployed_pool_is_unavailable(serve_stack, redis_url):
    cfg, address = serve_stack
    extra = cfg.model_copy(update={"pools": [*cfg.pools, PoolConfig(name="ghost", backend=SimBackend())]})
    handle = await start_router(extra, address, None, Tracing("ponder-test"), address="127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(handle.address) as ch:
            stub = router_pb2_grpc.RouterStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await stub.Generate(router_pb2.GenerateRequest(prompt="hi", hints=common_pb2.Hints(pool="ghost")), timeout=30)
    finally:
        await handle.stop(0)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE and "'ghost'" in exc.value.details()
