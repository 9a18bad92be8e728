"""The OpenAI-compatible front over a real model: Gemma 3 270M through llama.cpp, one pool.
Greedy answers through the openai client (plain and streamed) equal the gRPC answer."""
from __future__ import annotations

import grpc
import openai
import pytest

from ponder.common.config import LlamaCppBackend, PonderConfig, PoolConfig, RouterConfig
from ponder.common.grpcutil import stop_server
from ponder.common.telemetry import Tracing
from ponder.pools.models import ensure_default_gguf
from ponder.pools.servicer import SERVICE, start_standalone
from ponder.router.server import start_router
from ponder.v1 import common_pb2, router_pb2, router_pb2_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_openai_client_against_llamacpp_matches_grpc():
    tracing = Tracing("ponder-test")
    pool = PoolConfig(name="small", backend=LlamaCppBackend(model_path=str(ensure_default_gguf()), n_ctx=512, n_threads=2))
    cfg = PonderConfig(pools=[pool], router=RouterConfig(port=0))
    server, port, engine, health = await start_standalone(pool, "127.0.0.1:0", tracing)
    pool.address = f"127.0.0.1:{port}"
    router = await start_router(cfg, None, None, tracing, address="127.0.0.1:0", http_address="127.0.0.1:0")
    client = openai.AsyncOpenAI(base_url=router.http_url, api_key="sk-test")
    try:
        args = dict(model="small", prompt="The capital of France is", max_tokens=6, temperature=0, seed=1)
        plain = await client.completions.create(**args)
        streamed = "".join([c.choices[0].text async for c in await client.completions.create(**args, stream=True)
                            if c.choices])
        async with grpc.aio.insecure_channel(router.address) as ch:
            ref = await router_pb2_grpc.RouterStub(ch).Generate(router_pb2.GenerateRequest(
                prompt="The capital of France is", hints=common_pb2.Hints(pool="small"),
                sampling=common_pb2.SamplingParams(max_tokens=6, temperature=0, seed=1)), timeout=60)
    finally:
        await client.close()
        await router.stop(0)
        await stop_server(server, health, [SERVICE], 0)
        await engine.close()
    assert not ref.simulated and ref.text.strip()
    assert plain.choices[0].text == streamed == ref.text
    assert plain.usage.completion_tokens == ref.usage.output_tokens
    assert plain.model_extra["ponder"]["simulated"] is False
