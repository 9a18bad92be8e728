"""Retries: which statuses, how long to wait, and a budget that stops retry storms (pure parts unit-tested).

``RetryPolicy`` follows gRPC's retry design (gRFC A6): up to ``max_attempts``
tries of UNAVAILABLE and RESOURCE_EXHAUSTED, waiting a uniformly random time
in [0, min(max_backoff_s, initial_backoff_s * multiplier^(n-1))] before retry
n, unless the server pushed back with ``grpc-retry-pushback-ms`` (wait exactly
that; a negative or malformed value means do not retry). ``RetryBudget`` is
A6's throttle: a token bucket that loses 1 per failed attempt and gains
``token_ratio`` per success; retries stop while it holds half or less.
"""
from __future__ import annotations

import dataclasses
import random
import threading

PUSHBACK_KEY = "grpc-retry-pushback-ms"


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    multiplier: float = 2.0

    def __post_init__(self):
        if self.max_attempts < 1 or self.initial_backoff_s <= 0 or self.max_backoff_s <= 0 or self.multiplier < 1:
            raise ValueError(f"invalid retry policy {self}")

    def backoff_s(self, retry: int, rand: random.Random | None = None) -> float:
        """Wait before retry ``retry`` (1-based): full jitter over the capped exponential, in [0, max_backoff_s]."""
        cap = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1))
        return (rand or random).uniform(0, cap)


def pushback_s(trailing_metadata) -> float | None:
    """The server's pushback in seconds; None when absent; -1.0 when it says not to retry."""
    for key, value in trailing_metadata or ():
        if key == PUSHBACK_KEY:
            try:
                ms = int(value.decode() if isinstance(value, bytes) else value)
            except ValueError:
                return -1.0
            return ms / 1000 if ms >= 0 else -1.0
    return None


class RetryBudget:
    """Token bucket shared by one client's calls (thread-safe)."""

    def __init__(self, max_tokens: float = 10.0, token_ratio: float = 0.1):
        if max_tokens <= 0 or token_ratio <= 0:
            raise ValueError("max_tokens and token_ratio must be > 0")
        self.max_tokens, self.token_ratio, self.tokens = max_tokens, token_ratio, max_tokens
        self._lock = threading.Lock()

    def failed(self) -> None:
        with self._lock:
            self.tokens = max(0.0, self.tokens - 1)

    def succeeded(self) -> None:
        with self._lock:
            self.tokens = min(self.max_tokens, self.tokens + self.token_ratio)

    def allows_retry(self) -> bool:
        with self._lock:
            return self.tokens > self.max_tokens / 2
