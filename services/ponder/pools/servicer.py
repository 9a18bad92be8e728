"""The ModelPool gRPC service as a plain grpc.aio servicer, and a standalone server.

Ray Serve wraps the same ``PoolEngine`` in ``ponder.pools.serve_app``; the
standalone server runs a pool outside Ray (benchmarks, a pool on a bare VM).
"""
from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2

from ponder.common.config import PoolConfig
from ponder.common.grpcutil import create_server, mark_serving
from ponder.common.telemetry import Tracing, extract_metadata
from ponder.pools.backends import make_pool_backend
from ponder.pools.convert import chunk_to_proto, request_from_proto, result_to_proto, stats_to_proto
from ponder.pools.engine import PoolEngine
from ponder.v1 import pool_pb2, pool_pb2_grpc

SERVICE = pool_pb2.DESCRIPTOR.services_by_name["ModelPool"].full_name


class PoolServicer(pool_pb2_grpc.ModelPoolServicer):
    def __init__(self, engine: PoolEngine, tracing: Tracing):
        self.engine = engine
        self.tracing = tracing

    def _span(self, name: str, context: grpc.aio.ServicerContext):
        return self.tracing.tracer.start_as_current_span(
            name,
            context=extract_metadata(context.invocation_metadata()),
            attributes={"ponder.pool": self.engine.cfg.name},
        )

    async def Generate(self, request, context):
        with self._span("pool.generate", context):
            return result_to_proto(await self.engine.generate(request_from_proto(request)))

    async def GenerateStream(self, request, context):
        with self._span("pool.generate_stream", context):
            async for item in self.engine.stream(request_from_proto(request)):
                yield chunk_to_proto(item)

    async def Stats(self, request, context):
        return stats_to_proto(self.engine.stats())


async def start_standalone(cfg: PoolConfig, address: str, tracing: Tracing):
    """Start a pool as a plain grpc.aio server; returns (server, port, engine, health)."""
    engine = PoolEngine(cfg, make_pool_backend(cfg))
    await engine.start()
    servicer = PoolServicer(engine, tracing)
    server, port, health = create_server(
        address, lambda s: pool_pb2_grpc.add_ModelPoolServicer_to_server(servicer, s), [SERVICE]
    )
    await server.start()
    if engine.serving:
        await mark_serving(health, [SERVICE])
    else:  # the model did not load: up, NOT_SERVING, and Stats says why
        for name in ("", SERVICE):
            await health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    return server, port, engine, health
