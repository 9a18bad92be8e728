"""A pool as a Ray Serve application with gRPC ingress.

Serve's gRPC proxy routes a call to the application named in the
``application`` metadata key, then to the deployment method with the same name
as the gRPC method. ``build_app({"pool": {...}})`` is the import path KubeRay's
RayService uses; ``ponder up`` calls it directly.
"""
from __future__ import annotations

import contextlib
from typing import Any

from ray import serve
from ray.serve.grpc_util import RayServegRPCContext

from ponder.common.config import PoolConfig
from ponder.common.errors import grpc_status
from ponder.common.telemetry import Tracing, extract_metadata
from ponder.pools.backends import make_pool_backend
from ponder.pools.convert import chunk_to_proto, request_from_proto, result_to_proto, stats_to_proto
from ponder.pools.engine import PoolEngine

SERVICER_FUNCTION = "ponder.v1.pool_pb2_grpc.add_ModelPoolServicer_to_server"


def _fail(ctx: RayServegRPCContext, err: BaseException) -> None:
    code, msg = grpc_status(err)
    ctx.set_code(code)
    ctx.set_details(msg)


class PoolDeployment:
    """One pool replica: a PoolEngine behind Serve's gRPC proxy."""

    async def __init__(self, pool: dict[str, Any]):
        # Serve awaits an async constructor: the replica reports ready only
        # once the model is loaded, so no request pays for loading.
        self.cfg = PoolConfig.model_validate(pool)
        self.engine = PoolEngine(self.cfg, make_pool_backend(self.cfg))
        self.tracing = Tracing.from_env(f"ponder-pool-{self.cfg.name}")
        await self.engine.start()

    def _span(self, name: str, ctx: RayServegRPCContext):
        return self.tracing.tracer.start_as_current_span(
            name, context=extract_metadata(ctx.invocation_metadata()), attributes={"ponder.pool": self.cfg.name}
        )

    async def Generate(self, request, grpc_context: RayServegRPCContext):
        with self._span("pool.generate", grpc_context):
            try:
                return result_to_proto(await self.engine.generate(request_from_proto(request)))
            except Exception as e:
                _fail(grpc_context, e)
                raise

    async def GenerateStream(self, request, grpc_context: RayServegRPCContext):
        with self._span("pool.generate_stream", grpc_context):
            try:
                async with contextlib.aclosing(self.engine.stream(request_from_proto(request))) as items:
                    async for item in items:
                        yield chunk_to_proto(item)
            except Exception as e:
                _fail(grpc_context, e)
                raise

    async def Stats(self, request, grpc_context: RayServegRPCContext):
        return stats_to_proto(self.engine.stats())


def deployment_options(cfg: PoolConfig) -> dict[str, Any]:
    """Serve deployment options for a pool (pure; unit-tested)."""
    opts: dict[str, Any] = {
        "name": f"pool-{cfg.name}",
        "max_ongoing_requests": cfg.max_queued_requests,
        "ray_actor_options": {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus},
        "health_check_period_s": 10,
        "graceful_shutdown_timeout_s": 10,
    }
    r = cfg.replicas
    if r.min == r.max:
        opts["num_replicas"] = r.max
    else:
        opts["autoscaling_config"] = {
            "min_replicas": r.min,
            "max_replicas": r.max,
            "target_ongoing_requests": r.target_ongoing_requests,
        }
    return opts


def build_app(args: dict[str, Any]) -> serve.Application:
    """Serve application builder: ``args = {"pool": <PoolConfig dict>}``."""
    cfg = PoolConfig.model_validate(args["pool"])
    dep = serve.deployment(PoolDeployment).options(**deployment_options(cfg))
    return dep.bind(cfg.model_dump(mode="json"))
