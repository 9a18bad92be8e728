"""The drain gate over a real in-process gRPC server: once closed, new calls get UNAVAILABLE at once
while health still answers (NOT_SERVING); the quiet wait ends only when calls stop arriving."""
from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ponder.common.drain import gate_of
from ponder.common.grpcutil import mark_serving, stop_server
from ponder.common.telemetry import Tracing
from ponder.common.config import PoolConfig, SimBackend
from ponder.pools.servicer import SERVICE, start_standalone
from ponder.v1 import pool_pb2, pool_pb2_grpc

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool():
    cfg = PoolConfig(name="small", backend=SimBackend(ttft_ms=1, tpot_ms=1, output_tokens=4))
    server, port, engine, health = await start_standalone(cfg, "127.0.0.1:0", Tracing("t"))
    yield server, f"127.0.0.1:{port}", health
    await stop_server(server, health, [SERVICE], 0)
    await engine.close()


async def test_closed_gate_refuses_with_unavailable_and_health_stays_open(pool):
    server, address, health = pool
    gate = gate_of(server)
    async with grpc.aio.insecure_channel(address) as ch:
        stub = pool_pb2_grpc.ModelPoolStub(ch)
        await stub.Generate(pool_pb2.PoolGenerateRequest(prompt="hi"), timeout=5)
        await health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        gate.close()
        for call in (stub.Generate(pool_pb2.PoolGenerateRequest(prompt="hi"), timeout=5),
                     stub.GenerateStream(pool_pb2.PoolGenerateRequest(prompt="hi"), timeout=5).read()):
            with pytest.raises(grpc.aio.AioRpcError) as ei:
                await call
            assert ei.value.code() == grpc.StatusCode.UNAVAILABLE and "shutting down" in ei.value.details()
        h = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert h.status == health_pb2.HealthCheckResponse.NOT_SERVING and gate.refused == 2


async def test_quiet_waits_for_calls_to_stop(pool):
    server, address, _ = pool
    gate = gate_of(server)
    gate.close()
    stop = asyncio.Event()

    async def knock():
        async with grpc.aio.insecure_channel(address) as ch:
            stub = pool_pb2_grpc.ModelPoolStub(ch)
            while not stop.is_set():
                with pytest.raises(grpc.aio.AioRpcError):
                    await stub.Generate(pool_pb2.PoolGenerateRequest(prompt="hi"), timeout=5)
                await asyncio.sleep(0.01)

    task = asyncio.create_task(knock())
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    assert not await gate.quiet(0.1, t0 + 0.5)  # calls every ~10 ms: never quiet for 100 ms
    assert time.monotonic() - t0 >= 0.5
    stop.set()
    await task
    t0 = time.monotonic()
    assert await gate.quiet(0.1, t0 + 5)
    assert 0.1 <= time.monotonic() - t0 < 1.0
