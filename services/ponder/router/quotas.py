"""Per-tenant quotas in Redis, so every router replica enforces the same limits.

For a tenant with limits (``routing.quotas``), a request is admitted in one
Lua script that, atomically:

1. counts it in the tenant's requests of this second (``requests_per_s``);
2. adds it to the tenant's in-flight set, a sorted set scored by the time
   it expires (its deadline), so a crashed replica's entries age out
   (``concurrent_requests``);
3. reads the compute units planned in this minute and this UTC day and
   returns what is left under ``cu_per_minute`` / ``cu_per_day``.

A refusal undoes steps 1-2 and raises ``QuotaExceeded`` (RESOURCE_EXHAUSTED
with ``grpc-retry-pushback-ms``: until the next second, the next minute or
the next day; 100 ms for concurrency). What is left caps the plan (the
``quota`` filter): the planner cuts the plan down to fit, or refuses when
even the cheapest does not. The planned cost is then reserved (again
atomically, refusing when a concurrent request took the room), and when the
request ends the in-flight entry is removed and the reservation corrected
to the measured cost. Redis unreachable: requests are admitted unlimited
and the outage is logged (the router keeps serving).
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Callable

from redis.exceptions import RedisError

from ponder.common.config import PonderConfig, TenantLimits
from ponder.common.errors import ResourceExhausted
from ponder.router.resilience import RETRY_PUSHBACK_KEY

log = logging.getLogger(__name__)
PREFIX = "ponder:quota"
_DOWN = (RedisError, OSError)
_NONE = -1  # "no limit" in the scripts' arguments

_ADMIT = """
local now, rps, conc, rid, expires = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
if rps >= 0 then
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('EXPIRE', KEYS[1], 2) end
  if n > rps then redis.call('DECR', KEYS[1]); return {1, '0'} end
end
if conc >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= conc then
    if rps >= 0 then redis.call('DECR', KEYS[1]) end
    return {2, '0'}
  end
  redis.call('ZADD', KEYS[2], expires, rid)
  redis.call('EXPIRE', KEYS[2], math.ceil(expires - now) + 60)
end
return {0, redis.call('GET', KEYS[3]) or '0', redis.call('GET', KEYS[4]) or '0'}
"""

_RESERVE = """
local cu, lm, ld = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local m = tonumber(redis.call('GET', KEYS[1]) or '0')
local d = tonumber(redis.call('GET', KEYS[2]) or '0')
if (lm >= 0 and m + cu > lm) then return 1 end
if (ld >= 0 and d + cu > ld) then return 2 end
redis.call('INCRBYFLOAT', KEYS[1], ARGV[1]); redis.call('EXPIRE', KEYS[1], 120)
redis.call('INCRBYFLOAT', KEYS[2], ARGV[1]); redis.call('EXPIRE', KEYS[2], 172800)
return 0
"""

_SETTLE = """
redis.call('ZREM', KEYS[3], ARGV[2])
if tonumber(ARGV[1]) ~= 0 then
  if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBYFLOAT', KEYS[1], ARGV[1]) end
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('INCRBYFLOAT', KEYS[2], ARGV[1]) end
end
return 0
"""


class QuotaExceeded(ResourceExhausted):
    def __init__(self, tenant: str, what: str, retry_after_s: float):
        self.tenant, self.what, self.retry_after_s = tenant, what, retry_after_s
        super().__init__(f"tenant {tenant!r} is over its {what} quota (routing.quotas); retry in {retry_after_s:.3g}s")

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ((RETRY_PUSHBACK_KEY, str(max(1, int(self.retry_after_s * 1000)))),)


@dataclasses.dataclass
class QuotaLeft:
    """What a tenant may still plan now: compute units (inf: unlimited) and when the binding window resets."""

    tenant: str
    cu_left: float
    field: str
    retry_after_s: float


def _windows(now: float) -> tuple[int, int, int]:
    return int(now), int(now // 60), int(now // 86400)


def _limit(v) -> str:
    return repr(float(v)) if v is not None else str(_NONE)


@dataclasses.dataclass
class Admission:
    """One admitted request's hold on its tenant's quota; ``settle`` must follow (``Quotas.settle_later``)."""

    tenant: str
    request_id: str
    limits: TenantLimits
    keys: tuple[str, str, str]  # cu minute, cu day, in-flight set
    left: QuotaLeft
    reserved: float = 0.0


class Quotas:
    def __init__(self, redis, clock: Callable[[], float] = time.time):
        self.redis, self.clock = redis, clock
        self._tasks: set[asyncio.Task] = set()
        self.redis_errors = 0

    async def admit(self, cfg: PonderConfig, tenant: str, request_id: str, deadline_s: float) -> Admission | None:
        """Admit one request of ``tenant`` or raise QuotaExceeded; None when the tenant has no limits
        (or Redis is unreachable: then it is admitted unlimited)."""
        lim = cfg.routing.quotas.for_tenant(tenant)
        if not lim.any():
            return None
        now = self.clock()
        sec, minute, day = _windows(now)
        base = f"{PREFIX}:{tenant}"
        keys = (f"{base}:rps:{sec}", f"{base}:inflight", f"{base}:cu:m:{minute}", f"{base}:cu:d:{day}")
        try:
            res = await self.redis.eval(
                _ADMIT, 4, *keys, repr(now), str(lim.requests_per_s if lim.requests_per_s is not None else _NONE),
                str(lim.concurrent_requests if lim.concurrent_requests is not None else _NONE), request_id,
                repr(now + deadline_s),
            )
        except _DOWN as e:
            self.redis_errors += 1
            log.warning("quotas: redis unreachable (%s); admitting tenant %r unlimited", type(e).__name__, tenant)
            return None
        code = int(res[0])
        if code == 1:
            raise QuotaExceeded(tenant, f"requests_per_s={lim.requests_per_s}", sec + 1 - now)
        if code == 2:
            raise QuotaExceeded(tenant, f"concurrent_requests={lim.concurrent_requests}", 0.1)
        used_m, used_d = float(res[1]), float(res[2])
        left = QuotaLeft(tenant, float("inf"), "", 0.0)
        for cap, used, field, reset in ((lim.cu_per_minute, used_m, "cu_per_minute", (minute + 1) * 60 - now),
                                        (lim.cu_per_day, used_d, "cu_per_day", (day + 1) * 86400 - now)):
            if cap is not None and cap - used < left.cu_left:
                left = QuotaLeft(tenant, cap - used, field, reset)
        adm = Admission(tenant, request_id, lim, (keys[2], keys[3], keys[1]), left)
        if left.cu_left <= 0:
            await self._settle(adm, 0.0)
            raise QuotaExceeded(tenant, f"{left.field}={getattr(lim, left.field):g} compute units", left.retry_after_s)
        return adm

    async def reserve(self, adm: Admission, planned_cu: float) -> None:
        """Hold ``planned_cu`` in the tenant's windows; QuotaExceeded when a concurrent request took the room."""
        try:
            code = int(await self.redis.eval(_RESERVE, 2, adm.keys[0], adm.keys[1], repr(float(planned_cu)),
                                             _limit(adm.limits.cu_per_minute), _limit(adm.limits.cu_per_day)))
        except _DOWN:
            self.redis_errors += 1
            return
        if code:
            await self._settle(adm, 0.0)
            field = "cu_per_minute" if code == 1 else "cu_per_day"
            now = self.clock()
            reset = 60 - now % 60 if code == 1 else 86400 - now % 86400
            raise QuotaExceeded(adm.tenant, f"{field}={getattr(adm.limits, field):g} compute units", reset)
        adm.reserved = float(planned_cu)

    async def _settle(self, adm: Admission, actual_cu: float) -> None:
        delta = actual_cu - adm.reserved if adm.reserved else 0.0
        try:
            await self.redis.eval(_SETTLE, 3, *adm.keys, repr(delta), adm.request_id)
        except _DOWN:
            self.redis_errors += 1

    def settle_later(self, adm: Admission, actual_cu: float | None) -> None:
        """End the request's hold: leave the in-flight set, correct the reservation to ``actual_cu``
        (None: the request failed and is refunded). Off the request path."""
        cu = 0.0 if actual_cu is None else actual_cu
        task = asyncio.get_running_loop().create_task(self._settle(adm, cu))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
