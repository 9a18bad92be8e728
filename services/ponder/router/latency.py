"""Expected latency of a plan, and the observed pool speeds it is computed from.

``expected_latency_ms`` is the model: one sample takes the time to first token,
plus the prefill of what it reads (the prompt; with thinking, the answer phase
re-reads prompt and thoughts, as in the cost estimate), plus the decode of what
it writes (the thinking budget and the expected share of ``max_tokens``); a
pool runs ``concurrent_samples`` samples of a request at once, so n samples take
ceil(n / concurrent_samples) sample times.

``LatencyTracker`` inverts the model on each answered request and keeps, per
pool, exponentially weighted means (weight ``alpha`` on the newest) of:

- the time to first token less the prompt's prefill at the declared
  ``prefill_tokens_per_s``, comparable with ``Speed.ttft_ms``; only the request's
  quickest first token counts, since its other samples may have waited behind
  it on a pool that runs samples one at a time (``concurrent_samples`` models
  that wait);
- the decode time per output token, (duration − TTFT − the answer phase's
  re-read) / output tokens, averaged as time per token because latency is
  linear in it, and reported as tokens per second;
- the share of the allowance a sample's answer uses, answer tokens / max_tokens,
  in [0, 1].

Each figure is the pool's declared one (``PoolConfig.speed``; a share of 1, as
pessimistic as the cost estimate) until it has ``min_observations`` observations,
then the observed mean. Samples with a duration that is not a positive finite
number or a TTFT outside [0, duration] are skipped; a sample without output
tokens adds no decode time. A tracker belongs to one config: a reload, which may
put another model behind a pool name, starts a fresh one.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

from ponder.common.config import PoolConfig, Speed
from ponder.router.types import SampleResult


@dataclasses.dataclass(frozen=True, slots=True)
class SpeedEstimate:
    """A pool's speed as the latency estimate uses it, declared or observed."""

    ttft_ms: float
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    concurrent_samples: int
    output_share: float

    @classmethod
    def declared(cls, speed: Speed) -> SpeedEstimate:
        """The declared figures, expecting every sample to use its whole allowance."""
        return cls(speed.ttft_ms, speed.prefill_tokens_per_s, speed.decode_tokens_per_s, speed.concurrent_samples, 1.0)


def expected_latency_ms(
    speed: SpeedEstimate, prompt_tokens: int, max_tokens: int, samples: int, thinking_budget: int
) -> float:
    """Expected wall time of a plan in ms (> 0 for samples >= 1): the model in the module docstring."""
    read = prompt_tokens + (prompt_tokens + thinking_budget if thinking_budget else 0)
    write = thinking_budget + speed.output_share * max_tokens
    one = speed.ttft_ms + 1000.0 * (read / speed.prefill_tokens_per_s + write / speed.decode_tokens_per_s)
    return one * math.ceil(samples / speed.concurrent_samples)


class _Mean:
    """Exponentially weighted mean; the first value starts it."""

    __slots__ = ("alpha", "value", "count")

    def __init__(self, alpha: float):
        self.alpha = alpha
        self.value = 0.0
        self.count = 0

    def add(self, x: float) -> None:
        self.value = x if self.count == 0 else self.value + self.alpha * (x - self.value)
        self.count += 1


@dataclasses.dataclass(slots=True)
class _PoolMeans:
    ttft_ms: _Mean
    ms_per_token: _Mean
    output_share: _Mean


class LatencyTracker:
    """Observed speed per pool; see the module docstring."""

    def __init__(self, alpha: float = 0.2, min_observations: int = 5):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if min_observations < 1:
            raise ValueError(f"min_observations must be >= 1, got {min_observations}")
        self.alpha = alpha
        self.min_observations = min_observations
        self._pools: dict[str, _PoolMeans] = {}
        # pool name -> (the PoolConfig it was computed for, its SpeedEstimate); dropped on observe.
        self._speeds: dict[str, tuple[PoolConfig, SpeedEstimate]] = {}

    def observe(self, pool: PoolConfig, prompt_tokens: int, max_tokens: int, samples: Sequence[SampleResult]) -> None:
        """Fold one answered request's samples from ``pool`` into its means.

        ``prompt_tokens`` is the router's own estimate for the request's prompt,
        the figure ``expected_latency_ms`` is given, so that model and
        observation agree; ``max_tokens`` (>= 1) is each sample's answer allowance.
        """
        ok = [s for s in samples if 0 < s.duration_ms < math.inf and 0 <= s.ttft_ms <= s.duration_ms]
        if not ok:
            return
        self._speeds.pop(pool.name, None)
        means = self._pools.get(pool.name)
        if means is None:
            means = self._pools[pool.name] = _PoolMeans(_Mean(self.alpha), _Mean(self.alpha), _Mean(self.alpha))
        ms_per_prompt_token = 1000.0 / pool.speed.prefill_tokens_per_s
        first = min(ok, key=lambda s: s.ttft_ms)
        means.ttft_ms.add(max(0.0, first.ttft_ms - prompt_tokens * ms_per_prompt_token))
        for s in ok:
            answer_tokens = max(0, s.output_tokens - s.thinking_tokens)
            means.output_share.add(min(1.0, answer_tokens / max_tokens))
            reread_ms = (prompt_tokens + s.thinking_tokens) * ms_per_prompt_token if s.thinking_tokens else 0.0
            decode_ms = s.duration_ms - s.ttft_ms - reread_ms
            if s.output_tokens > 0 and decode_ms > 0:
                means.ms_per_token.add(decode_ms / s.output_tokens)

    def speed(self, pool: PoolConfig) -> SpeedEstimate:
        """The pool's speed now: each observed mean once it has enough observations, else the declared figure.

        Computed once per observation: every candidate of every request between two answers reads the cache.
        """
        hit = self._speeds.get(pool.name)
        if hit is not None and hit[0] is pool:
            return hit[1]
        est = self._speed(pool)
        self._speeds[pool.name] = (pool, est)
        return est

    def _speed(self, pool: PoolConfig) -> SpeedEstimate:
        declared = SpeedEstimate.declared(pool.speed)
        means = self._pools.get(pool.name)
        if means is None:
            return declared

        def pick(mean: _Mean, fallback: float) -> float:
            return mean.value if mean.count >= self.min_observations else fallback

        return dataclasses.replace(
            declared,
            ttft_ms=pick(means.ttft_ms, declared.ttft_ms),
            decode_tokens_per_s=1000.0 / pick(means.ms_per_token, 1000.0 / declared.decode_tokens_per_s),
            output_share=pick(means.output_share, declared.output_share),
        )
