"""Start and stop a router: config in, a serving grpc.aio server out."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pathlib

import grpc

from ponder.common.guard import internal_channel, server_guard
from ponder.common.tls import effective_tls
from ponder.common.config import PonderConfig
from ponder.common.grpcutil import create_server, mark_serving, stop_server
from ponder.common.telemetry import Tracing
from ponder.router.clients import PoolClients
from ponder.router.contexts import ContextStore
from ponder.router import strategies as strategy_registry
from ponder.router.outcomes import FeedbackStore, OutcomeLog
from ponder.router.policies.base import build_policy
from ponder.router.metrics import RouterMetrics
from ponder.router.request_path import RequestPath, RouterState
from ponder.router.servicer import RouterServicer
from ponder.v1 import router_pb2, router_pb2_grpc

log = logging.getLogger(__name__)
SERVICE = router_pb2.DESCRIPTOR.services_by_name["Router"].full_name
# The right each Router method needs from an API key (ponder.common.auth).
METHOD_RIGHTS = {f"/{SERVICE}/{m}": r for m, r in (
    ("Generate", "generate"), ("GenerateStream", "generate"), ("Plan", "generate"),
    ("Feedback", "feedback"), ("Status", "admin"),
)}


@dataclasses.dataclass
class RouterHandle:
    server: grpc.aio.Server
    port: int
    servicer: RouterServicer
    health: object
    redis: object | None
    pool_address: str | None = None
    metrics_server: object | None = None
    model_watcher: asyncio.Task | None = None
    voting: object | None = None  # ponder.voting.client.VotingClient
    http: object | None = None  # ponder.router.openai_http.serve.HttpFront, when router.http_port is set
    tls: object | None = None  # ponder.common.tls.CertReloader, when TLS is on

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def reload(self, cfg: PonderConfig) -> None:
        """Apply a new config without a restart; a bad one raises ConfigError and changes nothing."""
        state = make_state(cfg, self.pool_address, self.redis, self.voting,
                           failover=self.servicer.state.policy.catalog.failover)
        await self.servicer.reload(state, close_old_after_s=cfg.routing.default_timeout_s)

    @property
    def http_url(self) -> str:
        """The OpenAI-compatible base URL (``http://host:port/v1``); "" when the HTTP front is off."""
        return self.http.url if self.http is not None else ""

    async def stop(self, grace_s: float = 5.0) -> None:
        if self.model_watcher is not None:
            self.model_watcher.cancel()
        # Both fronts drain at once, so the whole stop stays within grace_s.
        await asyncio.gather(stop_server(self.server, self.health, [SERVICE], grace_s),
                             *([self.http.stop(grace_s)] if self.http is not None else []))
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        if self.servicer.outcomes:
            await self.servicer.outcomes.close()
        await self.servicer.state.clients.close()
        if self.voting is not None:
            await self.voting.close()
        if self.redis is not None:
            await self.redis.aclose()


def make_state(cfg: PonderConfig, pool_address: str | None, redis_client, voting_client=None,
               failover=None) -> RouterState:
    """Strategies (the voting client injected), the policy over them (with a budget controller
    when Redis is there) and pool clients; ``failover`` (breakers, retry budget) survives reloads.

    The policy's catalog starts a fresh latency tracker, so after a reload the
    pools are estimated at their declared speed until they are observed again.
    """
    strategies = strategy_registry.build(voting_client)
    policy = build_policy(cfg, strategies, failover)
    if redis_client is not None and policy.uses_budget:
        from ponder.router.budget import BudgetController

        policy.set_budget(BudgetController(redis_client, cfg.routing.budget.target_cu_per_request))
    return RouterState(cfg, policy, PoolClients(cfg.pools, pool_address), strategies)


def spill_path(cfg: PonderConfig) -> pathlib.Path:
    """The outcome log's spill file: ``redis.outcome_spill_path``, else one per stream and port in the cache dir."""
    if cfg.redis.outcome_spill_path:
        return pathlib.Path(cfg.redis.outcome_spill_path)
    from ponder.pools.models import cache_dir

    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in cfg.redis.outcome_stream)
    return cache_dir() / f"outcomes-{safe}-{cfg.router.port}.spill"


async def watch_model(servicer: RouterServicer, poll_s: float) -> None:
    """Hot-reload the policy's classifier when its model directory's metadata changes.

    ``ponder router retrain`` (or ``train``) writes the arrays first and
    ``model.json`` last, atomically; a change of that file is a complete model.
    Loading happens in a thread; requests keep being planned with the old model
    until the new one is swapped in, and an unloadable model is logged and skipped.
    """
    from ponder.router.classifiers.base import META_FILE, load_classifier

    seen: dict[str, tuple[int, int]] = {}
    while True:
        await asyncio.sleep(poll_s)
        policy = servicer.state.policy
        model_dir = getattr(policy.params, "model_dir", None)
        if not model_dir or not hasattr(policy, "set_classifier"):
            continue
        try:
            st = (pathlib.Path(model_dir) / META_FILE).stat()
        except OSError:
            continue
        stamp = (st.st_mtime_ns, st.st_size)
        if model_dir not in seen:
            seen[model_dir] = stamp  # the model the policy loaded at start
            continue
        if seen[model_dir] == stamp:
            continue
        seen[model_dir] = stamp
        try:
            clf = await asyncio.to_thread(load_classifier, model_dir)
            policy.set_classifier(clf)
            log.warning("classifier reloaded from %s", model_dir)
        except Exception as e:  # noqa: BLE001 - keep serving with the previous model
            log.error("classifier in %s not loaded, keeping the previous one: %s", model_dir, e)


async def start_router(
    cfg: PonderConfig,
    pool_address: str | None,
    redis_url: str | None,
    tracing: Tracing,
    address: str | None = None,
    voting_address: str | None = None,
    http_address: str | None = None,
) -> RouterHandle:
    """Build policy, pool clients and outcome log from ``cfg`` and start serving.

    ``pool_address`` is the Serve gRPC proxy for pools without their own
    ``address``. ``redis_url`` None runs without an outcome log or context store;
    ``voting_address`` None without voting workers (task requests are refused).
    The OpenAI-compatible HTTP front listens on ``http_address`` (host:port), else
    on ``router.http_host:router.http_port`` (or ``$PONDER_HTTP_PORT``) when a port is set, else not at all.
    """
    redis_client = outcomes = contexts = feedback = None
    if redis_url:
        import redis.asyncio as aioredis

        redis_client = aioredis.Redis.from_url(redis_url)
    try:  # a bad TLS file or no key source: refuse before anything runs
        guard = server_guard(cfg, cfg.router.host, redis_client, METHOD_RIGHTS)
    except Exception:
        if redis_client is not None:
            await redis_client.aclose()
        raise
    if redis_client is not None:
        outcomes = OutcomeLog(redis_client, cfg.redis.outcome_stream, cfg.redis.outcome_maxlen,
                              max_buffer=cfg.redis.outcome_buffer_records, spill_path=spill_path(cfg))
        outcomes.start()
        contexts = ContextStore(redis_client, cfg.consolidator)
        feedback = FeedbackStore(redis_client)
    metrics = RouterMetrics(cfg.pools)
    metrics_server = None
    port_env = os.environ.get("PONDER_METRICS_PORT")
    metrics_port = cfg.router.metrics_port if cfg.router.metrics_port is not None else (int(port_env) if port_env else None)
    if metrics_port is not None:
        metrics_server, _ = metrics.serve(metrics_port, cfg.router.host)
    voting = None
    if voting_address:
        from ponder.voting.client import VotingClient

        from ponder.common.grpcutil import CHANNEL_OPTIONS

        voting = VotingClient(voting_address, internal_channel(cfg, voting_address, CHANNEL_OPTIONS), owns_channel=True)
    state = make_state(cfg, pool_address, redis_client, voting)
    quotas = None
    if redis_client is not None:
        from ponder.router.quotas import Quotas

        quotas = Quotas(redis_client)
    servicer = RouterServicer(RequestPath(state, tracing, outcomes, contexts, metrics, feedback, quotas=quotas,
                                          verifier=guard.verifier))
    metrics.set_budget_source(lambda: servicer.state.policy.budget)
    server, port, health = create_server(
        address or f"{cfg.router.host}:{cfg.router.port}",
        lambda s: router_pb2_grpc.add_RouterServicer_to_server(servicer, s),
        [SERVICE],
        interceptors=guard.interceptors,
        max_receive_bytes=cfg.router.max_request_bytes,
        credentials=guard.credentials,
    )
    http = None
    http_env = os.environ.get("PONDER_HTTP_PORT")
    http_port = cfg.router.http_port if cfg.router.http_port is not None else (int(http_env) if http_env else None)
    if http_address is not None or http_port is not None:
        from ponder.router.openai_http.serve import start_http

        host, _, hport = (http_address or f"{cfg.router.http_host or cfg.router.host}:{http_port}").rpartition(":")
        try:
            http = await start_http(lambda: servicer.path, host.strip("[]"), int(hport), cfg.router.grace_s,
                                    effective_tls(cfg.tls))
        except OSError as e:
            from ponder.common.errors import ConfigError

            # Nothing serves yet: release what was opened for it before refusing.
            if outcomes is not None:
                await outcomes.close()
            await state.clients.close()
            if voting is not None:
                await voting.close()
            if redis_client is not None:
                await redis_client.aclose()
            if metrics_server is not None:
                metrics_server.shutdown()
            raise ConfigError("router", [("router.http_port", f"cannot listen on {host}:{hport}: {e.strerror or e}")]) from e
        servicer.path.http_url = http.url
    await server.start()
    await mark_serving(health, [SERVICE])
    watcher = asyncio.create_task(watch_model(servicer, cfg.router.config_poll_s))
    return RouterHandle(server, port, servicer, health, redis_client, pool_address, metrics_server, watcher, voting, http,
                        guard.reloader)


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
