"""The pool catalog: configured pools with one cost and latency model that every plan shares.

``estimate`` prices a (pool, strategy, samples, thinking budget) shape for a
request; strategies call it to build their candidates, so candidates from any
strategy are comparable. ``observe`` feeds answered samples to the latency
tracker, which replaces declared pool speeds with measured ones. ``failover``
holds each pool's circuit breaker (read by the ``circuit`` filter) and the
router's retry budget.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

from ponder.common.config import PonderConfig, PoolConfig
from ponder.router.latency import LatencyTracker, expected_latency_ms
from ponder.router.resilience import Failover
from ponder.router.types import Candidate, Plan, Request, SampleResult

if TYPE_CHECKING:
    from ponder.router.strategies.base import Strategy

CHARS_PER_TOKEN = 4.0


def estimate_tokens(text_chars: int) -> int:
    """Prompt tokens estimated from characters (>= 1); about 4 characters a token for English."""
    return max(1, int(text_chars / CHARS_PER_TOKEN))


class PoolCatalog:
    """View of the configured pools, with the shared cost and latency model.

    The pools are read-only; ``latency`` learns their speeds from the answers
    the router reports through ``observe``.
    """

    def __init__(self, cfg: PonderConfig, latency: LatencyTracker | None = None,
                 strategies: Mapping[str, "Strategy"] | None = None, failover: Failover | None = None):
        if strategies is None:
            from ponder.router.strategies import build

            strategies = build()
        self.strategies = dict(strategies)
        self.strategy_names = list(self.strategies)
        self.cfg = cfg
        self.routing = cfg.routing
        self.pools = {p.name: p for p in cfg.pools}
        self.latency = latency if latency is not None else LatencyTracker()
        # Pool health (breakers) and the retry budget; shared across reloads when passed in.
        self.failover = (failover.configure(cfg.routing.resilience) if failover is not None
                         else Failover.from_config(cfg.routing.resilience))
        tiers = cfg.routing.tiers
        self._tiers = {
            t: (getattr(tiers, t) or [p.name for p in cfg.pools if p.tier == t]) for t in ("small", "reasoning", "softcot")
        }

    def candidates(self, req: Request) -> list[Candidate]:
        """Every plan every strategy offers for ``req`` on every pool (hinted pool only, when hinted)."""
        pools = [self.pools[req.hint_pool]] if req.hint_pool in self.pools else self.cfg.pools
        out: list[Candidate] = []
        for pool in pools:
            for s in self.strategies.values():
                out += s.candidates(req, pool, self)
        return out

    def by_tier(self, tier: str) -> list[PoolConfig]:
        """Pools serving ``tier``: ``routing.tiers`` when it lists any, else the pools declaring it."""
        return [self.pools[n] for n in self._tiers.get(tier, [])]

    def first_of_tier(self, tier: str) -> str | None:
        names = self._tiers.get(tier)
        return names[0] if names else None

    def prompt_tokens(self, req: Request) -> int:
        return req.prompt_tokens or estimate_tokens(len(req.text))

    @staticmethod
    def context_window(pool: PoolConfig) -> int | None:
        """The pool's context window in tokens when its backend declares one, else None (unknown)."""
        fields = pool.backend.__dict__  # a pydantic model's field values; a missing one is no exception
        return fields.get("n_ctx") or fields.get("max_model_len")

    def max_tokens(self, req: Request, pool: PoolConfig) -> int:
        return req.sampling.max_tokens or pool.max_tokens_default

    def estimate(self, req: Request, pool: str, strategy: str, samples: int, thinking_budget: int,
                 sample_prompt_tokens: int | None = None, sample_output_tokens: int | None = None) -> Candidate:
        """A candidate priced pessimistically: every sample uses its whole token allowance.

        A thinking sample reads the prompt twice (the answer phase re-reads prompt
        and thoughts). ``sample_*_tokens`` override the per-sample token counts
        (strategies whose samples are not the request's prompt, e.g. voting steps).
        Latency comes from the pool's speed now (declared, then observed).
        """
        p = self.pools[pool]
        prompt = self.prompt_tokens(req) if sample_prompt_tokens is None else sample_prompt_tokens
        max_tokens = self.max_tokens(req, p) if sample_output_tokens is None else sample_output_tokens
        per_sample_prompt = 2 * prompt + thinking_budget if thinking_budget else prompt
        cu = samples * p.cost.units(per_sample_prompt, max_tokens + thinking_budget)
        ms = expected_latency_ms(self.latency.speed(p), prompt, max_tokens, samples, thinking_budget)
        return Candidate(
            pool=pool, strategy=strategy, samples=samples, thinking_budget=thinking_budget,
            expected_compute_units=round(cu, 3), expected_latency_ms=round(ms, 3),
        )

    def observe(self, req: Request, plan: Plan, samples: Sequence[SampleResult]) -> None:
        """Feed the samples that answered ``req`` to the latency tracker, each to the pool that drew it
        (``SampleResult.pool``, else ``plan.pool``)."""
        by_pool: dict[str, list[SampleResult]] = {}
        for s in samples:
            by_pool.setdefault(s.pool or plan.pool, []).append(s)
        for name, drawn in by_pool.items():
            p = self.pools[name]
            self.latency.observe(p, self.prompt_tokens(req), self.max_tokens(req, p), drawn)
