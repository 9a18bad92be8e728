"""Start and stop a router: config in, a serving grpc.aio server out."""
from __future__ import annotations

import dataclasses
import logging

import grpc

from ponder.common.config import PonderConfig
from ponder.common.grpcutil import create_server, mark_serving, stop_server
from ponder.common.telemetry import Tracing
from ponder.router.clients import PoolClients
from ponder.router.contexts import ContextStore
from ponder.router.outcomes import OutcomeLog
from ponder.router.policies.base import build_policy
from ponder.router.servicer import RouterServicer
from ponder.v1 import router_pb2, router_pb2_grpc

log = logging.getLogger(__name__)
SERVICE = router_pb2.DESCRIPTOR.services_by_name["Router"].full_name


@dataclasses.dataclass
class RouterHandle:
    server: grpc.aio.Server
    port: int
    servicer: RouterServicer
    health: object
    redis: object | None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace_s: float = 5.0) -> None:
        await stop_server(self.server, self.health, [SERVICE], grace_s)
        if self.servicer.outcomes:
            await self.servicer.outcomes.close()
        await self.servicer.clients.close()
        if self.redis is not None:
            await self.redis.aclose()


async def start_router(
    cfg: PonderConfig,
    pool_address: str | None,
    redis_url: str | None,
    tracing: Tracing,
    address: str | None = None,
) -> RouterHandle:
    """Build policy, pool clients and outcome log from ``cfg`` and start serving.

    ``pool_address`` is the Serve gRPC proxy for pools without their own
    ``address``. ``redis_url`` None runs without an outcome log or context store.
    """
    policy = build_policy(cfg)
    clients = PoolClients(cfg.pools, pool_address)
    redis_client = outcomes = contexts = None
    if redis_url:
        import redis.asyncio as aioredis

        redis_client = aioredis.Redis.from_url(redis_url)
        outcomes = OutcomeLog(redis_client, cfg.redis.outcome_stream, cfg.redis.outcome_maxlen)
        outcomes.start()
        contexts = ContextStore(redis_client)
    servicer = RouterServicer(cfg, policy, clients, tracing, outcomes, contexts)
    server, port, health = create_server(
        address or f"{cfg.router.host}:{cfg.router.port}",
        lambda s: router_pb2_grpc.add_RouterServicer_to_server(servicer, s),
        [SERVICE],
    )
    await server.start()
    await mark_serving(health, [SERVICE])
    return RouterHandle(server, port, servicer, health, redis_client)
