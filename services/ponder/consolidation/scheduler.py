"""Idle-only job workers over a Redis stream with a consumer group.

Every replica runs ``Worker``s in the group ``cfg.group`` of ``cfg.stream``; one
stream entry (a job id) goes to one worker. A worker takes, in order: its own
entries left pending by an interrupted run, entries another worker has left
silent for ``claim_idle_s`` (XAUTOCLAIM: a crashed worker's job is reclaimed),
then new ones. While it holds a job it renews its claim every ``heartbeat_s``.

Each job is a list of steps (``StrategyRegistry.plan``). Before every step the
``IdleGate`` waits until the job's pool is idle by its ``Stats`` for the policy's
``min_idle_s``, the clock is inside the policy's schedule and the pool's rest is
over, so consolidation yields to live traffic between passes. The rest paces
consolidation to ``idle.max_pass_share`` of the pool's time: after a step of d
seconds the pool rests d * (1 - share) / share (kept in Redis, so every replica
sees it). A job whose context was consolidated less than ``min_interval_s`` ago
is deferred (parked in a sorted set, its stream entry acknowledged) and goes back
on the stream when its time comes, so it does not hold a worker meanwhile. After every step the text and the spend
so far are saved on the job: a failed attempt (pool down) is retried after
``retry_backoff_s`` from that point, up to ``max_attempts``, and never writes a
partial result. The result is written by ``ContextRepo.finish``, which refuses a
stale source version and makes a replayed job a no-op.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
import uuid
from typing import Awaitable, Callable

import redis.exceptions

from ponder.common.config import ConsolidatorConfig
from ponder.common.crd_models import ConsolidationPolicySpec
from ponder.common.eventloop import cancel_requested
from ponder.common.telemetry import Tracing, context_from_traceparent
from ponder.common.errors import BackendError, DeadlineExceeded, PonderError, PoolOverloaded, PoolUnavailable
from ponder.consolidation.metrics import ConsolidatorMetrics
from ponder.consolidation.policy import PolicyBook, in_schedule, interval_wait_s, is_idle, rest_after_step_s
from ponder.consolidation.store import TERMINAL, ContextNotFound, ContextRepo, JobRecord, estimate_tokens
from ponder.consolidation.strategies import StepContext, StrategyRegistry

log = logging.getLogger(__name__)
LoadFn = Callable[[str], Awaitable[tuple[int, int]]]
RestFn = Callable[[str], Awaitable[float]]
# Failures that may heal: the job is retried later with its progress kept.
RETRYABLE = (PoolUnavailable, PoolOverloaded, DeadlineExceeded, BackendError)
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError)


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True when ``stop`` was set meanwhile."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    return stop.is_set()


class IdleGate:
    """Whether a pool may take a consolidation step now, by its load and the policy."""

    def __init__(self, load: LoadFn, poll_s: float, clock: Callable[[], float] = time.time, rest: RestFn | None = None):
        self.load, self.poll_s, self.clock, self.rest = load, poll_s, clock, rest
        self.idle_since: dict[str, float] = {}
        self.last: dict[str, tuple[bool, int, int, str]] = {}

    async def check(self, pool: str, spec: ConsolidationPolicySpec) -> tuple[bool, str]:
        """(may run, why). Not idle: outside the schedule, resting after a step (max_pass_share),
        Stats failing, work queued or running above the threshold, or idle for less than ``min_idle_s``."""
        now = self.clock()
        qd = running = 0
        rest_until = await self.rest(pool) if self.rest is not None else 0.0
        if not in_schedule(spec.schedule, dt.datetime.fromtimestamp(now, dt.timezone.utc)):
            ok, why = False, f"outside the schedule {spec.schedule!r}"
        elif rest_until > now:
            ok, why = False, f"resting {rest_until - now:.1f}s (idle.max_pass_share={spec.idle.max_pass_share:g})"
        else:
            try:
                qd, running = await self.load(pool)
            except PonderError as e:
                ok, why = False, f"no load signal: {e.message}"
            else:
                if not is_idle(qd, running, spec):
                    ok, why = False, f"busy: queue_depth={qd} running={running}"
                else:
                    since = self.idle_since.setdefault(pool, now)
                    ok = now - since >= spec.idle.min_idle_s
                    why = "idle" if ok else f"idle for {now - since:.1f}s of {spec.idle.min_idle_s:g}s"
        if not ok and not why.startswith(("idle for", "resting")):
            self.idle_since.pop(pool, None)
        self.last[pool] = (ok, qd, running, why)
        return ok, why

    async def wait(self, pool: str, spec_of: Callable[[], ConsolidationPolicySpec], stop: asyncio.Event) -> bool:
        """Return True once the pool may run a step, False when ``stop`` is set first.
        The policy is read again on every poll, so edits apply to waiting jobs."""
        while not stop.is_set():
            ok, _ = await self.check(pool, spec_of())
            if ok:
                return True
            if await _sleep_or_stop(stop, self.poll_s):
                break
        return False


class Worker:
    """One job at a time from the shared stream; see the module docstring."""

    def __init__(self, repo: ContextRepo, cfg: ConsolidatorConfig, registry: StrategyRegistry, policies: PolicyBook,
                 pools, gate: IdleGate, name: str | None = None, metrics: ConsolidatorMetrics | None = None,
                 tracing: Tracing | None = None):
        self.repo, self.redis, self.cfg = repo, repo.redis, cfg
        self.tracer = (tracing or Tracing("ponder-consolidator")).tracer
        self.metrics = metrics or ConsolidatorMetrics()
        self.registry, self.policies, self.pools, self.gate = registry, policies, pools, gate
        self.name = name or worker_name()
        self.current: str | None = None

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.cfg.stream, self.cfg.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def _take(self) -> tuple[str, str] | None:
        s, g = self.cfg.stream, self.cfg.group
        await self.repo.release_due()
        own = await self.redis.xreadgroup(g, self.name, {s: "0"}, count=1)
        for _, entries in own or []:
            for mid, fields in entries:
                return mid.decode(), fields.get(b"job_id", b"").decode()
        claimed = await self.redis.xautoclaim(s, g, self.name, int(self.cfg.claim_idle_s * 1000), "0-0", count=1)
        for mid, fields in claimed[1]:
            if fields:
                log.info("reclaimed job %s from a silent worker", fields.get(b"job_id", b"").decode())
                return mid.decode(), fields.get(b"job_id", b"").decode()
        new = await self.redis.xreadgroup(g, self.name, {s: ">"}, count=1, block=int(self.cfg.poll_s * 1000))
        for _, entries in new or []:
            for mid, fields in entries:
                return mid.decode(), fields.get(b"job_id", b"").decode()
        return None

    async def _heartbeat(self, mid: str, job_id: str) -> None:
        # Stops on a cancel even when the Redis client swallowed it (``cancel_requested``): a heartbeat
        # that outlives its worker would renew the claim for ever and no replica could reclaim the job.
        while not cancel_requested():
            await asyncio.sleep(self.cfg.heartbeat_s)
            with contextlib.suppress(*REDIS_DOWN):
                await self.redis.xclaim(self.cfg.stream, self.cfg.group, self.name, 0, [mid], justid=True)
                await self.repo.update_job(job_id)

    async def run(self, stop: asyncio.Event) -> None:
        """Take and process jobs until ``stop``; survives Redis restarts by retrying."""
        while not stop.is_set() and not cancel_requested():
            try:
                await self.ensure_group()
                taken = await self._take()
                if taken is None:
                    continue
                mid, job_id = taken
                beat = asyncio.create_task(self._heartbeat(mid, job_id))
                self.current = job_id
                try:
                    done = await self.process(job_id, stop)
                finally:
                    beat.cancel()
                    self.current = None
                if cancel_requested():
                    raise asyncio.CancelledError
                if done:
                    await self.redis.xack(self.cfg.stream, self.cfg.group, mid)
            except REDIS_DOWN as e:
                log.warning("redis unavailable (%s); retrying", e)
                await _sleep_or_stop(stop, self.cfg.poll_s)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad job must not stop the worker
                log.exception("consolidation worker error")
                await _sleep_or_stop(stop, self.cfg.poll_s)

    def _step_context(self, pool: str, spec: ConsolidationPolicySpec) -> StepContext:
        kinds = tuple(p.kind for p in spec.passes)
        explicit = spec.pool in {p.spec.pool for p in self.policies.policies.values()}
        return StepContext(
            pool=pool,
            client=self.pools.client(pool),
            cost=self.pools.cost(pool),
            settings=self.cfg,
            pass_kinds=kinds if explicit else ("re_represent", "precompute_answers"),
            pass_max_tokens=tuple(p.max_tokens for p in spec.passes) if explicit else (),
            num_questions=tuple(p.num_questions for p in spec.passes) if explicit else (),
        )

    async def _rest(self, pool: str, started: float) -> None:
        """Pace the pool to its policy's ``idle.max_pass_share`` after a step begun at ``started``."""
        ended = self.repo.clock()
        rest = rest_after_step_s(ended - started, self.policies.for_pool(pool).idle.max_pass_share)
        if rest > 0:
            await self.repo.rest_pool(pool, ended + rest)

    async def _fail(self, job: JobRecord, state: str, error: str) -> None:
        await self.repo.fail(job, state, error)
        self.metrics.jobs.labels(state).inc()

    async def process(self, job_id: str, stop: asyncio.Event) -> bool:
        """Run one job to an end state; True when its stream entry may be acknowledged
        (finished, failed, superseded, unknown), False when it stays pending (stopping,
        or another worker has taken it over). The job's span continues the trace of
        whoever queued it, and the pool calls under it carry that trace on."""
        job = await self.repo.job(job_id)
        if job is None or job.state in TERMINAL:
            return True
        with self.tracer.start_as_current_span(
            "consolidator.job", context=context_from_traceparent(job.traceparent),
            attributes={"ponder.context_id": job.context_id, "ponder.job_id": job_id},
        ):
            return await self._process(job, stop)

    async def _process(self, job: JobRecord, stop: asyncio.Event) -> bool:
        job_id = job.job_id
        try:
            rec = await self.repo.info(job.context_id, with_text=True)
        except ContextNotFound:
            await self._fail(job, "failed", "the context was deleted or expired")
            return True
        if rec.version != job.source_version:
            await self._fail(job, "superseded", "the context changed before the job ran")
            return True
        # Jobs queued by the router leave strategy, passes and pool to this consolidator's defaults.
        strategy = job.strategy or self.cfg.default_strategy
        passes = job.passes or self.cfg.default_passes
        pool = job.pool or self.pools.default_pool()
        try:
            steps = self.registry.plan(self.registry.parse_chain(strategy), passes, self.cfg)
            ctx = self._step_context(pool, self.policies.for_pool(pool))
        except PonderError as e:
            await self._fail(job, "failed", e.message)
            return True
        if job.steps_done == 0:
            spec = self.policies.for_pool(pool)
            wait = interval_wait_s(await self.repo.last_consolidated_at(job.context_id), self.repo.clock(),
                                   spec.min_interval_s)
            if wait > 0:
                await self.repo.defer(job, self.repo.clock() + wait)
                log.info("job %s deferred %.0fs: %s was consolidated less than min_interval_s=%g ago",
                         job_id, wait, job.context_id, spec.min_interval_s)
                return True
        await self.repo.update_job(job_id, worker=self.name, steps_total=len(steps))
        text = job.progress_text if job.steps_done else rec.text
        i = job.steps_done
        while i < len(steps):
            await self.repo.update_job(job_id, state="waiting_idle")
            if not await self.gate.wait(pool, lambda: self.policies.for_pool(pool), stop):
                return False
            owner = await self.repo.job(job_id)
            if owner is None or owner.state in TERMINAL:
                return True
            if owner.worker != self.name:
                return False
            step, k = steps[i]
            await self.repo.update_job(job_id, state="running")
            started = self.repo.clock()
            try:
                r = await step.run_step(k, text, ctx)
            except RETRYABLE as e:
                await self._rest(pool, started)
                job.attempts += 1
                if job.attempts >= self.cfg.max_attempts:
                    await self.repo.update_job(job_id, attempts=job.attempts)
                    await self._fail(job, "failed", f"step {i + 1}/{len(steps)} ({step.name}): {e.message}")
                    return True
                self.metrics.retries.labels(pool).inc()
                log.warning("job %s step %d failed (%s); retrying in %.0fs", job_id, i, e.message, self.cfg.retry_backoff_s)
                await self.repo.update_job(job_id, state="retrying", attempts=job.attempts, error=e.message)
                if await _sleep_or_stop(stop, self.cfg.retry_backoff_s):
                    return False
                continue
            await self._rest(pool, started)
            text = r.text
            self.metrics.step(step.name, r.tokens_in, r.tokens_out, r.compute_units)
            job.compute_units += r.compute_units
            job.model_tokens_in += r.tokens_in
            job.model_tokens_out += r.tokens_out
            i += 1
            await self.repo.update_job(
                job_id, steps_done=i, progress_text=text, compute_units=job.compute_units,
                model_tokens_in=job.model_tokens_in, model_tokens_out=job.model_tokens_out,
            )
        spec = self.policies.for_pool(pool)
        outcome = await self.repo.finish(job, {
            "text": text, "strategy": strategy, "passes": len(steps), "tokens": estimate_tokens(text),
            "model_tokens_in": job.model_tokens_in, "model_tokens_out": job.model_tokens_out,
            "compute_units": job.compute_units,
        }, spec.retention.consolidated_ttl_s)
        self.metrics.jobs.labels({1: "done", 2: "superseded"}.get(outcome, "replayed")).inc()
        log.info("job %s on %s: %s", job_id, job.context_id, {1: "done", 0: "already finished", 2: "superseded"}.get(outcome, outcome))
        return True
