"""Failover state shared by every request of a router: a retry budget and one circuit breaker per pool.

Retry budget (the token-bucket form of gRPC's retry throttling and Envoy's
retry budgets): each request deposits ``ratio`` tokens, up to ``burst``; a
retry spends one whole token and is refused when less than one is left. The
bucket starts empty, so over any run the retries never exceed
``ratio * requests`` — a sick fleet sees at most that many extra attempts.

Circuit breaker per pool (closed -> open -> half-open): ``failure_threshold``
consecutive failures open it; while open the planner does not offer the pool
(``policies.filters.circuit``); ``open_s`` after opening it turns half-open
and lets one probe request through at a time: a success closes it, a failure
opens it again for another ``open_s``. Only outages count as failures
(``errors.Unavailable``); a bad request or a client's short deadline says
nothing about the pool's health. The clock is injected.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

from ponder.common.config import ResilienceConfig
from ponder.common.errors import Unavailable

# gRPC's trailing-metadata key telling a client when to retry (milliseconds).
RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms"
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class RetryBudget:
    """Retries allowed as a fraction of requests; ``try_spend`` is True when one may be made."""

    def __init__(self, ratio: float = 0.1, burst: float = 10.0):
        if not 0 <= ratio <= 1:
            raise ValueError(f"retry ratio must be in [0, 1], got {ratio}")
        if burst < 1 and ratio > 0:
            raise ValueError(f"retry burst must be >= 1, got {burst}")
        self.ratio, self.burst = ratio, burst
        self.tokens = 0.0
        self.requests = 0
        self.retries = 0
        self.refused = 0

    def deposit(self) -> None:
        """One request started."""
        self.requests += 1
        self.tokens = min(self.burst, self.tokens + self.ratio)

    def try_spend(self) -> bool:
        """Take one token for a retry; False (and counted in ``refused``) when the budget is spent."""
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.retries += 1
            return True
        self.refused += 1
        return False


@dataclasses.dataclass(frozen=True)
class BreakerSnapshot:
    """One pool's breaker at a moment: state (closed / open / half_open), consecutive failures,
    seconds since it entered that state (None: closed since it was made), seconds until an open one lets a probe through, times opened."""

    state: str
    failures: int
    since_s_ago: float | None
    retry_after_s: float
    opened_total: int


@dataclasses.dataclass
class CircuitBreaker:
    """One pool's breaker; see the module docstring for the state machine."""

    failure_threshold: int = 5
    open_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    state: str = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False
    opened_count: int = 0
    changed_at: float | None = None  # clock() when the state last changed; None: closed since creation

    def _tick(self) -> None:
        if self.state == OPEN and self.clock() - self.opened_at >= self.open_s:
            self.state, self.probing = HALF_OPEN, False
            self.changed_at = self.opened_at + self.open_s

    def snapshot(self) -> "BreakerSnapshot":
        """The breaker as ``Status`` reports it; ``since_s_ago`` is None for one closed since it was made."""
        self._tick()
        since = None if self.changed_at is None else max(0.0, self.clock() - self.changed_at)
        return BreakerSnapshot(self.state, self.failures, since, self.retry_after_s(), self.opened_count)

    def available(self) -> bool:
        """Whether a request may be planned on the pool now (half-open: only while no probe is out)."""
        self._tick()
        return self.state == CLOSED or (self.state == HALF_OPEN and not self.probing)

    def retry_after_s(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when it would now)."""
        self._tick()
        return max(0.0, self.open_s - (self.clock() - self.opened_at)) if self.state == OPEN else 0.0

    def begin(self) -> None:
        """A request is sent to the pool; in half-open state it is the probe."""
        self._tick()
        if self.state == HALF_OPEN:
            self.probing = True

    def success(self) -> None:
        if self.state != CLOSED:
            self.changed_at = self.clock()
        self.state, self.failures, self.probing = CLOSED, 0, False

    def failure(self) -> None:
        self._tick()
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.failure_threshold:
            if self.state != OPEN:
                self.opened_count += 1
                self.changed_at = self.clock()
            self.state, self.opened_at, self.probing = OPEN, self.clock(), False

    def abandon(self) -> None:
        """A request ended without telling anything about the pool (cancelled, bad request): free the probe."""
        self.probing = False


class Breakers:
    """The breakers of every pool, created on first use; they outlive config reloads."""

    def __init__(self, failure_threshold: int = 5, open_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.failure_threshold, self.open_s, self.clock = failure_threshold, open_s, clock
        self._by_pool: dict[str, CircuitBreaker] = {}

    def configure(self, failure_threshold: int, open_s: float) -> None:
        """New thresholds (a config reload) for existing and future breakers; their states stay."""
        self.failure_threshold, self.open_s = failure_threshold, open_s
        for b in self._by_pool.values():
            b.failure_threshold, b.open_s = failure_threshold, open_s

    def __getitem__(self, pool: str) -> CircuitBreaker:
        b = self._by_pool.get(pool)
        if b is None:
            b = self._by_pool[pool] = CircuitBreaker(self.failure_threshold, self.open_s, self.clock)
        return b

    def snapshot(self, pool: str) -> BreakerSnapshot:
        """``pool``'s breaker now; a pool never called is closed with no failures (no breaker is made)."""
        b = self._by_pool.get(pool)
        return b.snapshot() if b is not None else BreakerSnapshot(CLOSED, 0, None, 0.0, 0)

    def states(self) -> dict[str, str]:
        """Pool -> closed / open / half_open, for status and metrics."""
        for b in self._by_pool.values():
            b._tick()
        return {p: b.state for p, b in self._by_pool.items()}


class CircuitOpen(Unavailable):
    """Every pool a request could be planned on has an open breaker."""

    def __init__(self, pools: list[str], retry_after_s: float):
        self.pools, self.retry_after_s = pools, retry_after_s
        super().__init__(
            f"circuit open for pool(s) {', '.join(repr(p) for p in pools)} after repeated outages; "
            f"next probe in {retry_after_s:.1f}s"
        )

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ((RETRY_PUSHBACK_KEY, str(max(1, int(self.retry_after_s * 1000)))),)


@dataclasses.dataclass
class Failover:
    """A router's retry budget and breakers; built once and kept across config reloads."""

    breakers: Breakers
    retries: RetryBudget
    config: ResilienceConfig

    @classmethod
    def from_config(cls, rc: ResilienceConfig, clock: Callable[[], float] = time.monotonic) -> "Failover":
        return cls(Breakers(rc.breaker_failures, rc.breaker_open_s, clock),
                   RetryBudget(rc.retry_budget_ratio, rc.retry_budget_burst), rc)

    def configure(self, rc: ResilienceConfig) -> "Failover":
        """Apply a reloaded config; breaker states and unspent retry tokens stay."""
        self.breakers.configure(rc.breaker_failures, rc.breaker_open_s)
        self.retries.ratio, self.retries.burst = rc.retry_budget_ratio, rc.retry_budget_burst
        self.config = rc
        return self
