"""``threshold``: a configurable rule. Long or reasoning-flavoured prompts go to the
reasoning pool with a thinking budget, the rest to the small pool; hints override.

Caps are applied to the chosen candidate: when it costs more than
``budget.max_compute_units`` (or ``routing.budget.max_cu_per_request``, the
lower of the two) or is expected to take longer than ``budget.max_latency_ms``,
the thinking budget, then the sample count, is cut, then one plain sample on the
same pool and last on the small pool is tried; the first variant within both
caps is the plan, so a latency cap makes the router answer with less compute
rather than miss the deadline. If none fits, the request is refused: naming the
compute cap when no variant is cheap enough, else ``budget.max_latency_ms`` with
the fastest affordable variant's estimate. The plan reports the estimate
(``expected_latency_ms``) either way.
"""
from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from ponder.common.errors import ConfigError, InvalidArgument, UnknownPool
from ponder.router.policies.base import Policy, PoolCatalog, infeasible, over_caps, register
from ponder.router.types import Candidate, Plan, Request

STRATEGIES = ("single", "best_of_n", "think")


class ThresholdParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    small_pool: str | None = Field(None, description="Pool for easy prompts; unset: the first small-tier pool.")
    reasoning_pool: str | None = Field(None, description="Pool for hard prompts; unset: the first reasoning-tier pool.")
    long_prompt_chars: int = Field(400, ge=1, description="Prompts this long or longer count as hard.")
    keywords: list[str] = Field(
        default_factory=lambda: ["step by step", "prove", "derive", "solve", "calculate", "explain why"],
        description="Case-insensitive phrases that mark a prompt as hard.",
    )
    best_of_n_samples: int = Field(3, ge=2, le=256, description="Samples when best_of_n is hinted without a count.")


@register
class ThresholdPolicy(Policy):
    name = "threshold"
    Params = ThresholdParams

    def __init__(self, params: ThresholdParams, catalog: PoolCatalog):
        super().__init__(params, catalog)
        self.small = self._pick(params.small_pool, "small", "small_pool")
        self.reasoning = self._pick(params.reasoning_pool, "reasoning", "reasoning_pool", required=False) or self.small
        words = [re.escape(k.lower()) for k in params.keywords if k.strip()]
        self._hard_re = re.compile("|".join(words)) if words else None

    def _pick(self, name: str | None, tier: str, field: str, required: bool = True) -> str | None:
        if name is not None:
            if name not in self.catalog.pools:
                raise ConfigError(
                    "routing", [(f"routing.policy.params.{field}", f"unknown pool {name!r}; known: {sorted(self.catalog.pools)}")]
                )
            return name
        listed = getattr(self.catalog.cfg.routing.tiers, tier)
        if listed:
            return listed[0]
        tiered = self.catalog.by_tier(tier)
        if tiered:
            return tiered[0].name
        if required:
            return self.catalog.cfg.pools[0].name
        return None

    def _is_hard(self, req: Request) -> tuple[bool, str]:
        text = req.text
        if len(text) >= self.params.long_prompt_chars:
            return True, f"prompt has {len(text)} chars >= long_prompt_chars {self.params.long_prompt_chars}"
        if self._hard_re is not None:
            m = self._hard_re.search(text.lower())
            if m:
                return True, f"prompt mentions {m.group(0)!r}"
        return False, f"prompt has {len(text)} chars < long_prompt_chars {self.params.long_prompt_chars} and no hard keyword"

    def _default_thinking(self, pool: str) -> int:
        th = self.catalog.pools[pool].thinking
        return th.budget_tokens if th else 0

    async def plan(self, req: Request) -> Plan:
        cat = self.catalog
        routing = cat.cfg.routing
        if req.hint_pool and req.hint_pool not in cat.pools:
            raise UnknownPool("hints.pool", req.hint_pool, sorted(cat.pools))
        allowed = [x for x in STRATEGIES if x in routing.strategies]
        if req.hint_strategy and req.hint_strategy not in allowed:
            raise InvalidArgument(
                "hints.strategy", f"strategy {req.hint_strategy!r} is not available; allowed: {', '.join(allowed)}"
            )

        hard, why = self._is_hard(req)
        pool = req.hint_pool or (self.reasoning if hard else self.small)
        if req.hint_pool:
            why = f"hints.pool={req.hint_pool}"
        thinks = cat.pools[pool].thinking is not None
        strategy = req.hint_strategy or ("think" if thinks and "think" in allowed else "single")
        if req.hint_strategy:
            why += f"; hints.strategy={req.hint_strategy}"
        if strategy == "think" and not thinks and req.hint_strategy:
            raise InvalidArgument("hints.strategy", f"pool {pool!r} has no thinking config; use single or best_of_n")
        samples = 1
        if strategy == "best_of_n":
            samples = req.hint_samples or self.params.best_of_n_samples
        thinking = 0
        if strategy == "think":
            thinking = req.hint_thinking_budget if req.hint_thinking_budget is not None else self._default_thinking(pool)
            thinking = min(thinking, routing.max_thinking_tokens)

        cand = cat.estimate(req, pool, strategy, samples, thinking)
        candidates = [cand]
        cap, cap_field = routing.budget.max_cu_per_request, "routing.budget.max_cu_per_request"
        if req.max_compute_units is not None and req.max_compute_units <= cap:
            cap, cap_field = req.max_compute_units, "budget.max_compute_units"
        over = over_caps(cand, cap, req.max_latency_ms)
        if over:
            cand.feasible = False
            cand.note = over
            broken = [f"{cap_field}={cap}"] if cand.expected_compute_units > cap else []
            if req.max_latency_ms is not None and cand.expected_latency_ms > req.max_latency_ms:
                broken.append(f"budget.max_latency_ms={req.max_latency_ms:g}")
            cand = self._fit(req, pool, strategy, samples, thinking, cap, cap_field, candidates)
            why += f"; cut to fit {' and '.join(broken)}"
        return Plan(
            pool=cand.pool,
            strategy=cand.strategy,
            samples=cand.samples,
            thinking_budget=cand.thinking_budget,
            expected_compute_units=cand.expected_compute_units,
            expected_latency_ms=cand.expected_latency_ms,
            policy=self.name,
            reason=why,
            candidates=candidates,
            context_id=req.context_id,
        )

    def _fit(self, req: Request, pool: str, strategy: str, samples: int, thinking: int, cap: float, cap_field: str,
             tried: list[Candidate]) -> Candidate:
        """Cheaper variants of the plan, most similar first; the first within both caps wins."""
        cat = self.catalog
        variants: list[tuple[str, str, int, int]] = []
        t = thinking // 2
        while t >= 16:
            variants.append((pool, strategy, samples, t))
            t //= 2
        s = samples - 1
        while s >= 1:
            variants.append((pool, "best_of_n" if s > 1 else "single", s, 0))
            s -= 1
        variants.append((pool, "single", 1, 0))
        if not req.hint_pool:
            variants.append((self.small, "single", 1, 0))
        for v in variants:
            c = cat.estimate(req, *v)
            tried.append(c)
            over = over_caps(c, cap, req.max_latency_ms)
            if not over:
                return c
            c.feasible = False
            c.note = over
        raise infeasible(tried, cap, req.max_latency_ms, cap_field)
