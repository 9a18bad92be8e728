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


def create_server(address: str, samplers: SamplerRegistry, tracing: Tracing | None = None):
    """(server, port, health, servicer); the server is not started. ``address`` may end in :0."""
    servicer = VotingServicer(samplers, tracing)
    server, port, health = _create_server(
        address, lambda s: voting_pb2_grpc.add_VotingServicer_to_server(servicer, s), [SERVICE]
    )
    return server, port, health, servicer


@dataclasses.dataclass
class VotingServer:
    server: grpc.aio.Server
    port: int
    health: object
    servicer: VotingServicer

    async def stop(self, grace_s: float = 5.0) -> None:
        await stop_server(self.server, self.health, [SERVICE], grace_s)
        await self.servicer.samplers.close()


async def start(address: str, samplers: SamplerRegistry, tracing: Tracing | None = None) -> VotingServer:
    """Start a Voting server and mark it SERVING."""
    server, port, health, servicer = create_server(address, samplers, tracing)
    await server.start()
    await mark_serving(health, [SERVICE])
    return VotingServer(server, port, health, servicer)


async def start_from_config(
    cfg: PonderConfig, address: str, tracing: Tracing | None = None, serve_host: str = "127.0.0.1",
    default_sampler: str = "",
) -> VotingServer:
    """Voting server sampling the config's pools (own address, else the Serve gRPC proxy)."""
    default = default_sampler or (f"pool:{cfg.pools[0].name}" if cfg.pools else "sim:0.99")
    return await start(address, SamplerRegistry(pool_targets(cfg, serve_host), default), tracing)
