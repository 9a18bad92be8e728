"""The Voting gRPC service: thin proto -> ``solver.solve`` -> proto mapping, and its server.

``create_server`` builds (not starts) a grpc.aio server with health and
reflection; ``start`` starts one and marks it SERVING. Samplers come from a
``SamplerRegistry`` passed in, so the same servicer samples pools through Ray
Serve's gRPC proxy under ``ponder up`` and standalone pools in tests.
"""
from __future__ import annotations

import asyncio
import dataclasses
import uuid

import grpc

from ponder.common.config import PonderConfig
from ponder.common.grpcutil import create_server as _create_server
from ponder.common.grpcutil import mark_serving, stop_server
from ponder.common.telemetry import Tracing, extract_metadata
from ponder.v1 import voting_pb2, voting_pb2_grpc
from ponder.voting.convert import config_from_proto, step_to_proto, summary_to_proto, task_from_proto
from ponder.voting.samplers import SamplerRegistry, pool_targets
from ponder.voting.solver import StepResult, solve

SERVICE = voting_pb2.DESCRIPTOR.services_by_name["Voting"].full_name
# The right each Voting method needs from an API key (ponder.common.auth).
METHOD_RIGHTS = {f"/{SERVICE}/Solve": "generate"}


class VotingServicer(voting_pb2_grpc.VotingServicer):
    def __init__(self, samplers: SamplerRegistry, tracing: Tracing | None = None, sleep=asyncio.sleep):
        self.samplers = samplers
        self.tracing = tracing or Tracing("ponder-voting")
        self.sleep = sleep

    async def Solve(self, request, context):
        task = task_from_proto(request)
        cfg = config_from_proto(request)
        sampler = self.samplers.get(request.sampler, request.seed)
        request_id = request.request_id or uuid.uuid4().hex
        with self.tracing.tracer.start_as_current_span(
            "voting.solve",
            context=extract_metadata(context.invocation_metadata()),
            attributes={"ponder.task": task.name, "ponder.sampler": sampler.name, "ponder.request_id": request_id},
        ):
            async for item in solve(task, sampler, cfg, sleep=self.sleep):
                if isinstance(item, StepResult):
                    yield step_to_proto(item)
                else:
                    yield summary_to_proto(item, request_id)


def create_server(address: str, samplers: SamplerRegistry, tracing: Tracing | None = None, guard=None):
    """(server, port, health, servicer); the server is not started. ``address`` may end in :0.
    ``guard`` (``ponder.common.guard.Guard``) adds TLS and API-key checks."""
    servicer = VotingServicer(samplers, tracing)
    server, port, health = _create_server(
        address, lambda s: voting_pb2_grpc.add_VotingServicer_to_server(servicer, s), [SERVICE],
        interceptors=guard.interceptors if guard else None, credentials=guard.credentials if guard else None,
    )
    return server, port, health, servicer


@dataclasses.dataclass
class VotingServer:
    server: grpc.aio.Server
    port: int
    health: object
    servicer: VotingServicer
    redis: object | None = None  # the key store's client, when auth is on

    async def stop(self, grace_s: float = 5.0) -> None:
        await stop_server(self.server, self.health, [SERVICE], grace_s)
        await self.servicer.samplers.close()
        if self.redis is not None:
            await self.redis.aclose()


async def start(address: str, samplers: SamplerRegistry, tracing: Tracing | None = None, guard=None) -> VotingServer:
    """Start a Voting server and mark it SERVING."""
    server, port, health, servicer = create_server(address, samplers, tracing, guard)
    await server.start()
    await mark_serving(health, [SERVICE])
    return VotingServer(server, port, health, servicer)


async def start_from_config(
    cfg: PonderConfig, address: str, tracing: Tracing | None = None, serve_host: str = "127.0.0.1",
    default_sampler: str = "", redis_url: str | None = None,
) -> VotingServer:
    """Voting server sampling the config's pools (own address, else the Serve gRPC proxy), with
    ``cfg.tls`` and, when ``auth_required`` for the host it binds, API keys (the Redis store at ``redis_url``)."""
    from ponder.common.guard import server_guard

    default = default_sampler or (f"pool:{cfg.pools[0].name}" if cfg.pools else "sim:0.99")
    redis = None
    if redis_url:
        import redis.asyncio as aioredis

        redis = aioredis.Redis.from_url(redis_url)
    try:
        guard = server_guard(cfg, address.rsplit(":", 1)[0].strip("[]"), redis, METHOD_RIGHTS)
        srv = await start(address, SamplerRegistry(pool_targets(cfg, serve_host), default), tracing, guard)
    except BaseException:
        if redis is not None:
            await redis.aclose()
        raise
    srv.redis = redis
    return srv
