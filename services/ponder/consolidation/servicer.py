"""The Consolidator gRPC service: thin proto <-> ``ContextRepo`` mapping, and its server.

``start`` builds the repo (redis.asyncio), the strategy registry, the policy book,
the pool directory and ``cfg.consolidator.workers`` workers, serves with health
and reflection, and re-reads the policy file every ``config_poll_s``.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os

import grpc

from ponder.common.config import PonderConfig
from ponder.common.errors import InvalidArgument, PonderError, Unavailable
from ponder.common.grpcutil import create_server as _create_server
from ponder.common.grpcutil import mark_serving, stop_server
from ponder.common.guard import server_guard
from ponder.common.telemetry import Tracing, server_interceptor
from ponder.consolidation.metrics import ConsolidatorMetrics
from ponder.consolidation.policy import PolicyBook
from ponder.consolidation.pools import PoolDirectory
from ponder.consolidation.scheduler import REDIS_DOWN, IdleGate, Worker
from ponder.consolidation.store import (
    Consolidated, ContextRecord, ContextRepo, JobNotFound, JobRecord, check_id, check_text,
)
from ponder.consolidation.strategies import StrategyRegistry, default_registry
from ponder.v1 import consolidation_pb2 as pb
from ponder.v1 import consolidation_pb2_grpc

SERVICE = pb.DESCRIPTOR.services_by_name["Consolidator"].full_name
# The right each Consolidator method needs from an API key (ponder.common.auth); Status needs admin.
METHOD_RIGHTS = {f"/{SERVICE}/{m}": "generate" for m in ("PutContext", "GetContext", "DeleteContext", "Consolidate", "Jobs")}
log = logging.getLogger(__name__)


def info_to_proto(r: ContextRecord) -> pb.ContextInfo:
    return pb.ContextInfo(context_id=r.context_id, version=r.version, tenant=r.tenant, chars=r.chars,
                          tokens=r.tokens, created_at=r.created_at, expires_at=r.expires_at)


def consolidated_to_proto(c: Consolidated) -> pb.ConsolidatedForm:
    return pb.ConsolidatedForm(
        text=c.text, source_version=c.source_version, strategy=c.strategy, passes=c.passes, tokens=c.tokens,
        model_tokens_in=c.model_tokens_in, model_tokens_out=c.model_tokens_out, compute_units=c.compute_units,
        uses=c.uses, amortised_compute_units=c.amortised_compute_units, created_at=c.created_at, job_id=c.job_id,
    )


def job_to_proto(j: JobRecord) -> pb.Job:
    return pb.Job(
        job_id=j.job_id, context_id=j.context_id, source_version=j.source_version, strategy=j.strategy,
        passes=j.passes, pool=j.pool, state=j.state, steps_done=j.steps_done, steps_total=j.steps_total,
        attempts=j.attempts, error=j.error, compute_units=j.compute_units, model_tokens_in=j.model_tokens_in,
        model_tokens_out=j.model_tokens_out, created_at=j.created_at, updated_at=j.updated_at, worker=j.worker,
        not_before=j.not_before,
    )


class StoreUnavailable(Unavailable):
    """Redis did not answer (restarting, unreachable): clients may retry."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(f"context store unavailable: {detail}")


def store_errors(fn):
    """Retry a handler once when Redis drops the connection (a pooled connection that went
    stale across a Redis restart fails once); then UNAVAILABLE. Handlers are idempotent."""

    @functools.wraps(fn)
    async def wrapper(self, request, context):
        try:
            return await fn(self, request, context)
        except REDIS_DOWN:
            try:
                return await fn(self, request, context)
            except REDIS_DOWN as e:
                raise StoreUnavailable(str(e)) from e

    return wrapper


class ConsolidatorServicer(consolidation_pb2_grpc.ConsolidatorServicer):
    def __init__(self, cfg: PonderConfig, repo: ContextRepo, registry: StrategyRegistry, policies: PolicyBook,
                 pools: PoolDirectory, gate: IdleGate, worker_names: list[str]):
        self.cfg, self.repo, self.registry, self.policies, self.pools, self.gate = cfg, repo, registry, policies, pools, gate
        self.worker_names = worker_names

    @store_errors
    async def PutContext(self, request, context):
        check_id(request.context_id)
        check_text(request.text, self.cfg.consolidator.max_context_chars)
        ttl = None
        if request.HasField("ttl_s"):
            if not request.ttl_s > 0:
                raise InvalidArgument("ttl_s", f"must be > 0, got {request.ttl_s}")
            ttl = request.ttl_s
        else:
            ttl = float(self.policies.for_pool(self.pools.default_pool()).retention.raw_ttl_s)
        rec = await self.repo.put(request.context_id, request.text, ttl, request.tenant)
        evicted = await self.repo.evict_over(self.policies.max_contexts())
        if evicted:
            log.info("retention.max_contexts=%s: evicted %d oldest contexts", self.policies.max_contexts(), len(evicted))
        return info_to_proto(rec)

    @store_errors
    async def GetContext(self, request, context):
        check_id(request.context_id)
        rec, cons = await self.repo.current(request.context_id)
        resp = pb.GetContextResponse(info=info_to_proto(rec), raw_text=rec.text if request.include_text else "")
        if cons is not None:
            form = consolidated_to_proto(cons)
            if not request.include_text:
                form.text = ""
            resp.consolidated.CopyFrom(form)
        return resp

    @store_errors
    async def DeleteContext(self, request, context):
        check_id(request.context_id)
        return pb.DeleteContextResponse(deleted=await self.repo.delete(request.context_id))

    def parse_job(self, strategy: str, passes: int, pool: str) -> tuple[str, int, str, int]:
        """(strategy chain, passes, pool, steps) with defaults filled; INVALID_ARGUMENT naming the field."""
        c = self.cfg.consolidator
        names = self.registry.parse_chain(strategy or c.default_strategy)
        passes = passes or c.default_passes
        if passes < 1:
            raise InvalidArgument("passes", f"must be >= 1, got {passes}")
        pool = pool or self.pools.default_pool()
        self.pools.pool(pool)
        steps = len(self.registry.plan(names, passes, c))
        return "+".join(names), passes, pool, steps

    @store_errors
    async def Consolidate(self, request, context):
        check_id(request.context_id)
        strategy, passes, pool, steps = self.parse_job(request.strategy, request.passes, request.pool)
        return job_to_proto(await self.repo.enqueue(request.context_id, strategy, passes, pool, steps))

    @store_errors
    async def Jobs(self, request, context):
        if request.job_id:
            j = await self.repo.job(request.job_id)
            if j is None:
                raise JobNotFound(request.job_id)
            return pb.JobsResponse(jobs=[job_to_proto(j)])
        check_id(request.context_id)
        return pb.JobsResponse(jobs=[job_to_proto(j) for j in await self.repo.jobs_of(request.context_id, request.limit or 50)])

    @store_errors
    async def Status(self, request, context):
        c = self.cfg.consolidator
        pending = 0
        with contextlib.suppress(Exception):
            groups = await self.repo.redis.xinfo_groups(c.stream)
            for g in groups:
                if g["name"].decode() == c.group:
                    pending = int(g.get("pending", 0)) + int(g.get("lag") or 0)
        pools = []
        for name in self.pools.names:
            ok, qd, running, why = self.gate.last.get(name) or (False, 0, 0, "not checked yet")
            pools.append(pb.PoolIdleState(pool=name, idle=ok, queue_depth=qd, running=running, reason=why))
        return pb.ConsolidatorStatus(
            contexts=await self.repo.count(), jobs_pending=pending, strategies=self.registry.names, pools=pools,
            policies=sorted(p.name for p in self.policies.policies.values()), worker=",".join(self.worker_names),
        )


@dataclasses.dataclass
class ConsolidatorServer:
    server: grpc.aio.Server
    port: int
    health: object
    servicer: ConsolidatorServicer
    tasks: list[asyncio.Task]
    stop_event: asyncio.Event
    redis: object
    metrics_server: object = None
    owned_tracing: Tracing | None = None  # made by ``start`` from the environment: flushed and closed on stop

    async def stop(self, grace_s: float = 5.0) -> None:
        self.stop_event.set()
        await stop_server(self.server, self.health, [SERVICE], grace_s)
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.servicer.registry.close()
        await self.servicer.pools.close()
        await self.redis.aclose()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        if self.owned_tracing is not None:
            self.owned_tracing.shutdown()


async def _watch_policies(book: PolicyBook, poll_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_s)
        book.reload()


async def start(cfg: PonderConfig, redis_url: str, address: str, serve_address: str | None = None,
                policy_file: str | None = None, registry: StrategyRegistry | None = None,
                load=None, tracing: Tracing | None = None) -> ConsolidatorServer:
    """Start a Consolidator server with its workers and mark it SERVING. ``address`` may end in :0.
    ``load`` replaces the pools' Stats reading (pool name -> (queue_depth, running)). ``tracing``
    (default: from the OTEL_* environment) spans every RPC and job, continuing the caller's trace."""
    import redis.asyncio as aioredis

    c = cfg.consolidator
    client = aioredis.Redis.from_url(redis_url)
    try:  # TLS files and key sources are checked before anything runs
        guard = server_guard(cfg, address.rsplit(":", 1)[0].strip("[]"), client, METHOD_RIGHTS)
    except Exception:
        await client.aclose()
        raise
    repo = ContextRepo(client, c.stream)
    registry = registry or default_registry()
    book = PolicyBook(policy_file or c.policy_file)
    pools = PoolDirectory(cfg, serve_address)
    gate = IdleGate(load or pools.load, c.poll_s, rest=repo.pool_rest_until)
    metrics = ConsolidatorMetrics()
    metrics_server = None
    if os.environ.get("PONDER_METRICS_PORT"):
        metrics_server, _ = metrics.serve(int(os.environ["PONDER_METRICS_PORT"]))
    owned = None if tracing is not None else Tracing.from_env("ponder-consolidator")
    tracing = tracing or owned
    workers = [Worker(repo, c, registry, book, pools, gate, metrics=metrics, tracing=tracing) for _ in range(c.workers)]
    servicer = ConsolidatorServicer(cfg, repo, registry, book, pools, gate, [w.name for w in workers])
    servicer.worker_metrics = metrics
    server, port, health = _create_server(
        address, lambda s: consolidation_pb2_grpc.add_ConsolidatorServicer_to_server(servicer, s), [SERVICE],
        interceptors=[server_interceptor(tracing), *guard.interceptors], credentials=guard.credentials,
    )
    await server.start()
    await mark_serving(health, [SERVICE])
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    tasks.append(asyncio.create_task(_watch_policies(book, c.config_poll_s, stop)))
    return ConsolidatorServer(server, port, health, servicer, tasks, stop, client, metrics_server, owned)
