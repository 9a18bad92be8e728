"""Start and stop a router: config in, a serving grpc.aio server out."""
from __future__ import annotations

import dataclasses
import logging
import os

import grpc

from ponder.common.config import PonderConfig
from ponder.common.grpcutil import create_server, mark_serving, stop_server
from ponder.common.telemetry import Tracing
from ponder.router.clients import PoolClients
from ponder.router.contexts import ContextStore
from ponder.router.outcomes import OutcomeLog
from ponder.router.policies.base import build_policy
from ponder.router.metrics import RouterMetrics
from ponder.router.servicer import RouterServicer, RouterState
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
    pool_address: str | None = None
    metrics_server: object | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def reload(self, cfg: PonderConfig) -> None:
        """Apply a new config without a restart; a bad one raises ConfigError and changes nothing."""
        state = RouterState(cfg, build_policy(cfg), PoolClients(cfg.pools, self.pool_address))
        await self.servicer.reload(state, close_old_after_s=cfg.routing.default_timeout_s)

    async def stop(self, grace_s: float = 5.0) -> None:
        await stop_server(self.server, self.health, [SERVICE], grace_s)
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        if self.servicer.outcomes:
            await self.servicer.outcomes.close()
        await self.servicer.clients.close()
        if self.servicer.voting is not None:
            await self.servicer.voting.client.close()
        if self.redis is not None:
            await self.redis.aclose()


async def start_router(
    cfg: PonderConfig,
    pool_address: str | None,
    redis_url: str | None,
    tracing: Tracing,
    address: str | None = None,
    voting_address: str | None = None,
) -> RouterHandle:
    """Build policy, pool clients and outcome log from ``cfg`` and start serving.

    ``pool_address`` is the Serve gRPC proxy for pools without their own
    ``address``. ``redis_url`` None runs without an outcome log or context store;
    ``voting_address`` None without voting workers (task requests are refused).
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
    metrics = RouterMetrics(cfg.pools)
    metrics_server = None
    port_env = os.environ.get("PONDER_METRICS_PORT")
    metrics_port = cfg.router.metrics_port if cfg.router.metrics_port is not None else (int(port_env) if port_env else None)
    if metrics_port is not None:
        metrics_server, _ = metrics.serve(metrics_port, cfg.router.host)
    voting = None
    if voting_address:
        from ponder.router.strategies.vote import Vote
        from ponder.voting.client import VotingClient

        voting = Vote(VotingClient(voting_address))
    servicer = RouterServicer(cfg, policy, clients, tracing, outcomes, contexts, metrics, voting)
    server, port, health = create_server(
        address or f"{cfg.router.host}:{cfg.router.port}",
        lambda s: router_pb2_grpc.add_RouterServicer_to_server(servicer, s),
        [SERVICE],
    )
    await server.start()
    await mark_serving(health, [SERVICE])
    return RouterHandle(server, port, servicer, health, redis_client, pool_address, metrics_server)


async def watch_config(path: str, handle: RouterHandle, poll_s: float) -> None:
    """Re-read ``path`` every ``poll_s``; apply it when its content changes.

    Kubernetes updates a mounted ConfigMap by swapping a symlink, so the file's
    content, not its mtime, is compared. An invalid new config is logged and
    ignored: the router keeps serving with the last good one.
    """
    import asyncio
    import hashlib
    import pathlib

    from ponder.common.config import load_config
    from ponder.common.errors import PonderError

    def digest() -> str | None:
        try:
            return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
        except OSError:
            return None

    seen = digest()
    while True:
        await asyncio.sleep(poll_s)
        now = digest()
        if now is None or now == seen:
            continue
        seen = now
        try:
            cfg = load_config(path)
            await handle.reload(cfg)
            log.warning("config %s reloaded: pools %s, policy %s", path, cfg.pool_names, cfg.routing.policy.name)
        except PonderError as e:
            log.error("config %s not applied, keeping the previous one: %s", path, e)
