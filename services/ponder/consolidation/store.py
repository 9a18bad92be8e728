"""Contexts, consolidated forms and consolidation jobs in Redis, versioned by the source's hash.

Keys (``{id}`` is the context id):
  ``ponder:context:{id}``               hash: text, version (SHA-256 hex of text), tenant, chars, tokens, created_at, expires_at
  ``ponder:context:{id}:consolidated``  hash: text, source_version, strategy, passes, tokens, model_tokens_in/out,
                                        compute_units, uses, created_at, job_id
  ``ponder:context:{id}:jobs``          sorted set of job ids by creation time
  ``ponder:consolidation:job:{job}``    hash: the job (``Job`` in consolidation.proto) and its saved progress
  ``ponder:consolidation:pending:...``  one live job per (context, version, strategy, passes, pool)
  ``ponder:contexts:by_put``            sorted set of context ids by the time they were last put (eviction order)
  ``ponder:consolidation:deferred``     sorted set of job ids by the time they may run again (min_interval_s)
  ``ponder:consolidation:pool_rest``    sorted set of pools by the time they may run a step again (max_pass_share)

A consolidated form is served only when its ``source_version`` equals the
context's current ``version``; both checks run inside Redis scripts, so a
result made from an older text is never served or written as current, and a
job finished twice writes once.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import time
import uuid
from typing import Any, Callable

from ponder.common.errors import InvalidArgument, NotFound
from ponder.common.telemetry import current_traceparent


PREFIX = "ponder:context:"
JOB_PREFIX = "ponder:consolidation:job:"
PENDING_PREFIX = "ponder:consolidation:pending:"
INDEX = "ponder:contexts"
BY_PUT = "ponder:contexts:by_put"
DEFERRED = "ponder:consolidation:deferred"
POOL_REST = "ponder:consolidation:pool_rest"
HELD = ("waiting_idle", "running", "retrying")  # a worker holds the job
ID_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,200}$")
TERMINAL = ("done", "failed", "superseded")
CHARS_PER_TOKEN = 4.0
STREAM_MAXLEN = 100_000


class ContextNotFound(NotFound):
    def __init__(self, context_id: str):
        self.context_id = context_id
        super().__init__(f"context_id: no stored context {context_id!r}")


class JobNotFound(NotFound):
    def __init__(self, job_id: str):
        self.job_id = job_id
        super().__init__(f"job_id: no consolidation job {job_id!r}")


def version_of(text: str) -> str:
    """SHA-256 hex of the UTF-8 text: the context's version."""
    return hashlib.sha256(text.encode()).hexdigest()


def estimate_tokens(text: str) -> int:
    """Estimated prompt tokens of ``text`` (one per 4 characters, rounded up; 0 for empty).
    Raw and consolidated forms are estimated alike, so their ratio is fair."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def check_id(context_id: str, field: str = "context_id") -> str:
    if not ID_RE.match(context_id or ""):
        raise InvalidArgument(field, f"must be 1..200 characters of letters, digits and . _ : / -, got {context_id!r}")
    return context_id


def check_text(text: str, max_chars: int, field: str = "text") -> str:
    if not text or not text.strip():
        raise InvalidArgument(field, "must not be empty")
    if len(text) > max_chars:
        raise InvalidArgument(field, f"{len(text)} characters is over the limit of {max_chars} (consolidator.max_context_chars)")
    return text


@dataclasses.dataclass(frozen=True)
class ContextRecord:
    context_id: str
    version: str
    tenant: str
    chars: int
    tokens: int
    created_at: float
    expires_at: float
    text: str = ""


@dataclasses.dataclass(frozen=True)
class Consolidated:
    text: str
    source_version: str
    strategy: str
    passes: int
    tokens: int
    model_tokens_in: int
    model_tokens_out: int
    compute_units: float
    uses: int
    created_at: float
    job_id: str

    @property
    def amortised_compute_units(self) -> float:
        return self.compute_units / max(self.uses, 1)


@dataclasses.dataclass
class JobRecord:
    job_id: str
    context_id: str
    source_version: str
    strategy: str
    passes: int
    pool: str
    state: str = "queued"
    steps_done: int = 0
    steps_total: int = 0
    attempts: int = 0
    error: str = ""
    compute_units: float = 0.0
    model_tokens_in: int = 0
    model_tokens_out: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    worker: str = ""
    progress_text: str = ""
    # W3C traceparent of whoever queued the job (a router request, a Consolidate call); "" when untraced.
    traceparent: str = ""
    not_before: float = 0.0  # deferred: may run from this time on

    INTS = ("passes", "steps_done", "steps_total", "attempts", "model_tokens_in", "model_tokens_out")
    FLOATS = ("compute_units", "created_at", "updated_at", "not_before")

    def to_redis(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes]) -> "JobRecord":
        d = {k.decode(): v.decode() for k, v in raw.items()}
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            kw[f.name] = int(v) if f.name in cls.INTS else float(v) if f.name in cls.FLOATS else v
        return cls(**kw)


_RESOLVE = """
local c = redis.call('HMGET', KEYS[1], 'version', 'tokens', 'text')
if not c[1] then return false end
local s = redis.call('HMGET', KEYS[2], 'source_version', 'text', 'tokens', 'compute_units', 'strategy')
if s[1] and s[1] == c[1] then
  local uses = redis.call('HGET', KEYS[2], 'uses') or '0'
  if ARGV[1] == '1' then uses = redis.call('HINCRBY', KEYS[2], 'uses', 1) end
  return {c[1], c[2] or '0', c[3] or '', '1', s[2] or '', s[3] or '0', s[4] or '0', tostring(uses), s[5] or ''}
end
return {c[1], c[2] or '0', c[3] or '', '0'}
"""

_FINISH = """
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return -1 end
if st == 'done' or st == 'failed' or st == 'superseded' then return 0 end
if redis.call('HGET', KEYS[2], 'version') ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', 'superseded', 'updated_at', ARGV[2], 'error', 'the context changed while it was consolidated')
  redis.call('DEL', KEYS[4])
  return 2
end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], unpack(ARGV, 4))
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[3], ARGV[3]) end
redis.call('HSET', KEYS[1], 'state', 'done', 'updated_at', ARGV[2], 'error', '')
redis.call('DEL', KEYS[4])
return 1
"""

# Move deferred jobs whose time has come back onto the stream, at most ARGV[2] of them.
_RELEASE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'job_id', id)
end
return #ids
"""


@dataclasses.dataclass(frozen=True)
class Resolved:
    """One atomic read of a context: the raw text, and the consolidated form when it is current."""

    version: str
    raw_text: str
    raw_tokens: int
    consolidated: Consolidated | None


class ContextRepo:
    """Redis operations on contexts, consolidated forms and jobs (redis.asyncio client)."""

    def __init__(self, redis, stream: str = "ponder:consolidation:jobs", clock: Callable[[], float] = time.time):
        self.redis = redis
        self.stream = stream
        self.clock = clock
        self._resolve = redis.register_script(_RESOLVE)
        self._finish = redis.register_script(_FINISH)
        self._release = redis.register_script(_RELEASE)

    # ------------------------------------------------------------ contexts
    async def put(self, context_id: str, text: str, ttl_s: float | None = None, tenant: str = "") -> ContextRecord:
        now = self.clock()
        rec = ContextRecord(
            context_id, version_of(text), tenant, len(text), estimate_tokens(text), now, now + ttl_s if ttl_s else 0.0, text
        )
        key = PREFIX + context_id
        async with self.redis.pipeline(transaction=True) as p:
            p.delete(key)  # also clears a plain-string context from older releases
            p.hset(key, mapping={
                "text": text.encode(), "version": rec.version, "tenant": tenant, "chars": rec.chars,
                "tokens": rec.tokens, "created_at": now, "expires_at": rec.expires_at,
            })
            if ttl_s:
                p.expire(key, max(1, math.ceil(ttl_s)))
            p.sadd(INDEX, context_id)
            p.zadd(BY_PUT, {context_id: now})
            await p.execute()
        return rec

    async def info(self, context_id: str, with_text: bool = False) -> ContextRecord:
        fields = ["version", "tenant", "chars", "tokens", "created_at", "expires_at"] + (["text"] if with_text else [])
        vals = await self.redis.hmget(PREFIX + context_id, fields)
        if vals[0] is None:
            raise ContextNotFound(context_id)
        d = dict(zip(fields, (v.decode() if v is not None else "" for v in vals)))
        return ContextRecord(
            context_id, d["version"], d["tenant"], int(d["chars"] or 0), int(d["tokens"] or 0),
            float(d["created_at"] or 0), float(d["expires_at"] or 0), d.get("text", ""),
        )

    async def consolidated(self, context_id: str) -> Consolidated | None:
        """The stored consolidated form, current or not (callers compare versions)."""
        raw = await self.redis.hgetall(PREFIX + context_id + ":consolidated")
        if not raw or b"source_version" not in raw:
            return None
        d = {k.decode(): v.decode() for k, v in raw.items()}
        return Consolidated(
            d["text"], d["source_version"], d.get("strategy", ""), int(d.get("passes", 0)), int(d.get("tokens", 0)),
            int(d.get("model_tokens_in", 0)), int(d.get("model_tokens_out", 0)), float(d.get("compute_units", 0)),
            int(d.get("uses", 0)), float(d.get("created_at", 0)), d.get("job_id", ""),
        )

    async def current(self, context_id: str) -> tuple[ContextRecord, Consolidated | None]:
        """(context with text, consolidated form made from its current version or None)."""
        rec = await self.info(context_id, with_text=True)
        cons = await self.consolidated(context_id)
        return rec, cons if cons is not None and cons.source_version == rec.version else None

    async def resolve(self, context_id: str, count_use: bool = True) -> Resolved:
        """Atomic read for a query: the current consolidated form (its ``uses`` counted when
        ``count_use``) or None when none matches the current version. ContextNotFound when unknown."""
        out = await self._resolve(keys=[PREFIX + context_id, PREFIX + context_id + ":consolidated"], args=["1" if count_use else "0"])
        if not out:
            raise ContextNotFound(context_id)
        version, tokens, raw_text = out[0].decode(), int(out[1] or 0), out[2].decode()
        cons = None
        if out[3] == b"1":
            cons = Consolidated(
                out[4].decode(), version, out[8].decode(), 0, int(out[5] or 0), 0, 0, float(out[6] or 0),
                int(out[7]), 0.0, "",
            )
        return Resolved(version, raw_text, tokens, cons)

    async def delete(self, context_id: str) -> bool:
        base = PREFIX + context_id
        async with self.redis.pipeline(transaction=True) as p:
            p.delete(base, base + ":consolidated")
            p.srem(INDEX, context_id)
            p.zrem(BY_PUT, context_id)
            n, _, _ = await p.execute()
        return n > 0

    async def in_use(self, context_id: str, recent_jobs: int = 8) -> bool:
        """Whether a worker holds one of the context's recent jobs (state in ``HELD``)."""
        return any(j.state in HELD for j in await self.jobs_of(context_id, recent_jobs))

    async def evict_over(self, cap: int | None) -> list[str]:
        """Delete the oldest-put contexts until at most ``cap`` remain, never one a running
        job holds (``policy.eviction_victims``); returns the ids deleted. None: no cap."""
        from ponder.consolidation.policy import eviction_victims

        if cap is None:
            return []
        total = int(await self.redis.zcard(BY_PUT))
        if total <= cap:
            return []
        # Look a little past the number needed, so contexts in use can be skipped.
        ids = [i.decode() for i in await self.redis.zrange(BY_PUT, 0, total - cap + 15)]
        busy = {i for i in ids if await self.in_use(i)}
        victims = eviction_victims(ids, busy, total, cap)
        for i in victims:
            await self.delete(i)
        return victims

    async def count(self) -> int:
        return int(await self.redis.scard(INDEX))

    async def last_consolidated_at(self, context_id: str) -> float | None:
        """When the context's stored consolidated form (of any version) was written; None if none."""
        v = await self.redis.hget(PREFIX + context_id + ":consolidated", "created_at")
        return float(v) if v is not None else None

    # ------------------------------------------------------------ pacing
    async def defer(self, job: JobRecord, not_before: float) -> None:
        """Park a job until ``not_before``; ``release_due`` puts it back on the stream then."""
        job.state, job.not_before = "deferred", not_before
        async with self.redis.pipeline(transaction=True) as p:
            p.hset(JOB_PREFIX + job.job_id, mapping={"state": "deferred", "not_before": not_before,
                                                     "updated_at": self.clock()})
            p.zadd(DEFERRED, {job.job_id: not_before})
            await p.execute()

    async def release_due(self, limit: int = 100) -> int:
        """Requeue the deferred jobs whose time has come (atomic: each goes back once)."""
        return int(await self._release(keys=[DEFERRED, self.stream], args=[self.clock(), limit, STREAM_MAXLEN]))

    async def rest_pool(self, pool: str, until: float) -> None:
        """No consolidation step starts on ``pool`` before ``until`` (only ever moves later)."""
        await self.redis.zadd(POOL_REST, {pool: until}, gt=True)

    async def pool_rest_until(self, pool: str) -> float:
        v = await self.redis.zscore(POOL_REST, pool)
        return float(v) if v is not None else 0.0

    # ------------------------------------------------------------ jobs
    def _pending_key(self, j: JobRecord) -> str:
        return f"{PENDING_PREFIX}{j.context_id}:{j.source_version}:{j.strategy}:{j.passes}:{j.pool}"

    async def enqueue(self, context_id: str, strategy: str, passes: int, pool: str, steps_total: int,
                      version: str | None = None) -> JobRecord:
        """Queue a job for the context's current version, or return the live job that
        already has the same (version, strategy, passes, pool)."""
        if version is None:
            version = (await self.info(context_id)).version
        now = self.clock()
        job = JobRecord(uuid.uuid4().hex, context_id, version, strategy, passes, pool,
                        steps_total=steps_total, created_at=now, updated_at=now, traceparent=current_traceparent())
        pk = self._pending_key(job)
        if not await self.redis.set(pk, job.job_id, nx=True, ex=7 * 86400):
            existing = await self.redis.get(pk)
            if existing is not None:
                found = await self.job(existing.decode())
                if found is not None and found.state not in TERMINAL:
                    return found
            await self.redis.set(pk, job.job_id, ex=7 * 86400)
        async with self.redis.pipeline(transaction=True) as p:
            p.hset(JOB_PREFIX + job.job_id, mapping=job.to_redis())
            p.expire(JOB_PREFIX + job.job_id, 30 * 86400)
            p.zadd(PREFIX + context_id + ":jobs", {job.job_id: now})
            # Acknowledged entries are dead weight; keep the stream near STREAM_MAXLEN entries.
            p.xadd(self.stream, {"job_id": job.job_id}, maxlen=STREAM_MAXLEN, approximate=True)
            await p.execute()
        return job

    async def job(self, job_id: str) -> JobRecord | None:
        raw = await self.redis.hgetall(JOB_PREFIX + job_id)
        return JobRecord.from_redis(raw) if raw else None

    async def jobs_of(self, context_id: str, limit: int = 50) -> list[JobRecord]:
        ids = await self.redis.zrevrange(PREFIX + context_id + ":jobs", 0, max(1, limit) - 1)
        out = [await self.job(i.decode()) for i in ids]
        return [j for j in out if j is not None]

    async def update_job(self, job_id: str, **fields: Any) -> None:
        fields["updated_at"] = self.clock()
        await self.redis.hset(JOB_PREFIX + job_id, mapping=fields)

    async def finish(self, job: JobRecord, result: dict[str, Any], ttl_s: float) -> int:
        """Write the job's result as the context's consolidated form, atomically and at most once.
        Returns 1 written, 0 already finished (a replay: nothing changes), 2 superseded (the
        context's text changed; nothing written), -1 unknown job."""
        fields: list[Any] = []
        for k, v in {**result, "source_version": job.source_version, "job_id": job.job_id, "uses": 0,
                     "created_at": self.clock()}.items():
            fields += [k, v]
        return int(await self._finish(
            keys=[JOB_PREFIX + job.job_id, PREFIX + job.context_id, PREFIX + job.context_id + ":consolidated",
                  self._pending_key(job)],
            args=[job.source_version, self.clock(), int(ttl_s), *fields],
        ))

    async def fail(self, job: JobRecord, state: str, error: str) -> None:
        async with self.redis.pipeline(transaction=True) as p:
            p.hset(JOB_PREFIX + job.job_id, mapping={"state": state, "error": error, "updated_at": self.clock()})
            p.delete(self._pending_key(job))
            await p.execute()
