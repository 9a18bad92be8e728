"""Integration fixtures: real gRPC servers on port 0, real redis-server, real llama.cpp."""
from __future__ import annotations

import dataclasses

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder.common.config import PonderConfig, PoolConfig, RouterConfig, RoutingConfig, SimBackend, Speed, Thinking
from ponder.common.grpcutil import stop_server
from ponder.common.telemetry import Tracing
from ponder.pools.servicer import SERVICE as POOL_SERVICE, start_standalone
from ponder.router.server import start_router
from ponder.v1 import router_pb2_grpc


@dataclasses.dataclass
class SimStack:
    cfg: PonderConfig
    router: object
    stub: router_pb2_grpc.RouterStub
    channel: grpc.aio.Channel
    pools: dict
    spans: InMemorySpanExporter


# What the sim pools below declare: their latency model (the sim ignores the prompt).
SIM_SPEED = Speed(ttft_ms=1, prefill_tokens_per_s=1e6, decode_tokens_per_s=1000, concurrent_samples=64)


def sim_config(**routing) -> PonderConfig:
    """Two sim pools (test doubles with a latency model) behind the default policy."""
    return PonderConfig(
        pools=[
            PoolConfig(name="small", backend=SimBackend(ttft_ms=1, tpot_ms=1, output_tokens=8), speed=SIM_SPEED),
            PoolConfig(
                name="reasoning",
                tier="reasoning",
                backend=SimBackend(ttft_ms=1, tpot_ms=1, output_tokens=8),
                thinking=Thinking(budget_tokens=8),
                cost={"prompt_token_cu": 0.2, "output_token_cu": 4.0},
                speed=SIM_SPEED,
            ),
        ],
        routing=RoutingConfig(**routing),
        router=RouterConfig(port=0),
    )


@pytest.fixture
async def sim_stack(redis_url):
    spans = InMemorySpanExporter()
    tracing = Tracing("ponder-test", spans, simple=True)
    cfg = sim_config()
    pools = {}
    for p in cfg.pools:
        server, port, engine, health = await start_standalone(p, "127.0.0.1:0", tracing)
        pools[p.name] = (server, port, engine, health)
        p.address = f"127.0.0.1:{port}"
    handle = await start_router(cfg, None, redis_url, tracing, address="127.0.0.1:0")
    channel = grpc.aio.insecure_channel(handle.address)
    yield SimStack(cfg, handle, router_pb2_grpc.RouterStub(channel), channel, pools, spans)
    await channel.close()
    await handle.stop(0)
    for server, _, engine, health in pools.values():
        await stop_server(server, health, [POOL_SERVICE], 0)
        await engine.close()
