"""Budget controller: keeps the fleet's mean compute units per request at a target.

The allocation policy maximises expected accuracy − λ·cost per request; this
controller adapts λ by dual ascent on the constraint E[cost] ≤ target. With
ν = λ·target (unitless) and each realised cost c:

    ν ← clip(ν + step · (c / target − 1), 0, nu_max)

Summing the updates shows the realised mean over T requests differs from the
target by (ν_T − ν_0) / (step·T) as long as ν stays inside its bounds, so the
error shrinks like 1/T. The state (ν, count, cost sum) lives in one Redis hash
updated by a Lua script, so every router replica and every restart steps the
same ν. Replicas cache λ for ``refresh_s`` (clock injected) between reads.

When Redis is unreachable the controller keeps working on local state: each
cost steps the cached ν by the same rule (counted in ``local_steps``) and a
failed refresh keeps the cached ν. When Redis answers again the shared ν takes
over; the steps taken locally during the outage are not merged into it.
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import time
from typing import Any, Callable

from redis.exceptions import RedisError

from ponder.common.errors import InvalidArgument

log = logging.getLogger(__name__)
BUDGET_KEY = "ponder:budget"
_DOWN = (RedisError, OSError)

_STEP_LUA = """
local nu = tonumber(redis.call('HGET', KEYS[1], 'nu') or ARGV[3])
local cost = tonumber(ARGV[1])
local target = tonumber(ARGV[2])
nu = nu + tonumber(ARGV[4]) * (cost / target - 1)
if nu < 0 then nu = 0 end
if nu > tonumber(ARGV[5]) then nu = tonumber(ARGV[5]) end
local s = string.format('%.17g', nu)
redis.call('HSET', KEYS[1], 'nu', s, 'target', ARGV[2], 'updated_at', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HINCRBYFLOAT', KEYS[1], 'cost_sum', ARGV[1])
return s
"""


def dual_step(nu: float, cost: float, target: float, step: float, nu_max: float) -> float:
    """One dual-ascent step on ν (the same rule the Lua script applies)."""
    return min(nu_max, max(0.0, nu + step * (cost / target - 1.0)))


@dataclasses.dataclass
class DualAscent:
    """In-process controller with the same rule, for replays and single-process use."""

    target_compute_units: float
    step: float = 0.02
    nu: float = 0.1
    nu_max: float = 100.0
    count: int = 0
    cost_sum: float = 0.0

    def lambda_per_cu(self) -> float:
        return self.nu / self.target_compute_units

    def observe(self, cost: float) -> float:
        self.nu = dual_step(self.nu, cost, self.target_compute_units, self.step, self.nu_max)
        self.count += 1
        self.cost_sum += cost
        return self.lambda_per_cu()


async def _maybe_await(v: Any) -> Any:
    return await v if inspect.isawaitable(v) else v


class BudgetController:
    """Dual ascent on λ with shared state in Redis (sync or asyncio client)."""

    def __init__(self, redis: Any, target_compute_units: float, key: str = BUDGET_KEY, step: float = 0.02,
                 initial_nu: float = 0.1, nu_max: float = 100.0, refresh_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        if not target_compute_units > 0:
            raise InvalidArgument("routing.budget.target_compute_units", f"must be > 0, got {target_compute_units}")
        self.redis, self.key = redis, key
        self.target = float(target_compute_units)
        self.step, self.initial_nu, self.nu_max = step, initial_nu, nu_max
        self.refresh_s, self.clock, self.wall_clock = refresh_s, clock, wall_clock
        self._nu = initial_nu
        self._read_at: float | None = None
        self.local_steps = 0

    def lambda_per_cu(self) -> float:
        """The cached λ (accuracy per compute unit); never blocks."""
        return self._nu / self.target

    @property
    def nu(self) -> float:
        return self._nu

    async def observe(self, compute_units: float) -> float:
        """Record one request's realised cost; returns the new λ per compute unit."""
        if compute_units < 0:
            raise InvalidArgument("usage.compute_units", f"must be >= 0, got {compute_units}")
        try:
            res = await _maybe_await(self.redis.eval(
                _STEP_LUA, 1, self.key, repr(float(compute_units)), repr(self.target), repr(self.initial_nu),
                repr(self.step), repr(self.nu_max), repr(self.wall_clock()),
            ))
        except _DOWN as e:
            if not self.local_steps:
                log.warning("budget controller: redis unreachable (%s); stepping lambda locally", e)
            self.local_steps += 1
            self._nu = dual_step(self._nu, float(compute_units), self.target, self.step, self.nu_max)
            return self.lambda_per_cu()
        self._nu = float(res.decode() if isinstance(res, bytes) else res)
        self._read_at = self.clock()
        return self.lambda_per_cu()

    async def refresh(self, force: bool = False) -> float:
        """Re-read ν from Redis when the cache is older than refresh_s (or when forced)."""
        now = self.clock()
        if not force and self._read_at is not None and now - self._read_at < self.refresh_s:
            return self.lambda_per_cu()
        try:
            v = await _maybe_await(self.redis.hget(self.key, "nu"))
        except _DOWN:
            return self.lambda_per_cu()  # keep the cached (locally stepped) value
        self._nu = float(v) if v is not None else self.initial_nu
        self._read_at = now
        return self.lambda_per_cu()

    async def state(self) -> dict[str, float]:
        """nu, lambda_per_cu, count, mean_compute_units and target as stored in Redis."""
        raw = await _maybe_await(self.redis.hgetall(self.key))
        d = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}
        nu = d.get("nu", self.initial_nu)
        count = d.get("count", 0.0)
        return {
            "nu": nu, "lambda_per_cu": nu / self.target, "count": count, "target_compute_units": self.target,
            "mean_compute_units": d.get("cost_sum", 0.0) / count if count else 0.0,
        }
