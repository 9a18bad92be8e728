"""``threshold``: a configurable rule. Long or reasoning-flavoured prompts go to the
reasoning pool with a thinking budget, the rest to the small pool; hints override.

The rule names a target plan: pool (``reasoning_pool`` for hard prompts, else
``small_pool``; a task goes to the small pool), strategy (``softcot`` on a pool
with a SoftCoT block, ``think`` on a pool with a thinking config, when allowed,
else ``single``; ``cascade`` instead of ``single`` when ``routing.strategies`` lists it and the
pool has a feasible cascade plan, i.e. somewhere to escalate to; ``vote`` for a task),
thinking budget (the pool's ``budget_tokens``) and, for a hinted
``best_of_n``, the smallest of ``routing.best_of_n_samples``. Each feasible candidate scores,
in [0, 1]:

    0.5·[same pool] + 0.25·[same strategy] + 0.25·closeness

where closeness = 1 − min(1, |log2(size / target size)| / 8) compares the
thinking budget (think) or sample count (best_of_n) and is 1 for a single
sample. The shared filters have already removed what breaks a cap, so the
pick is the plan most like the target that fits: a thinking budget cut first,
then a plain sample on the same pool, then the small pool — the router answers
with less compute rather than miss the cap.
"""
from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field

from ponder.common.errors import ConfigError
from ponder.router.policies.base import Policy, register
from ponder.router.types import Candidate, Request


class ThresholdParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    small_pool: str | None = Field(None, description="Pool for easy prompts; unset: the first small-tier pool.")
    reasoning_pool: str | None = Field(None, description="Pool for hard prompts; unset: the first reasoning-tier pool.")
    long_prompt_chars: int = Field(400, ge=1, description="Prompts this long or longer count as hard.")
    keywords: list[str] = Field(
        default_factory=lambda: ["step by step", "prove", "derive", "solve", "calculate", "explain why"],
        description="Case-insensitive phrases that mark a prompt as hard.",
    )


def _closeness(size: float, target: float) -> float:
    if size <= 0 or target <= 0:
        return 1.0 if size == target else 0.0
    return 1.0 - min(1.0, abs(math.log2(size / target)) / 8)


@register
class ThresholdPolicy(Policy):
    name = "threshold"
    Params = ThresholdParams

    def __init__(self, params: ThresholdParams, catalog):
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
        first = self.catalog.first_of_tier(tier)
        if first is not None:
            return first
        return self.catalog.cfg.pools[0].name if required else None

    def _is_hard(self, req: Request) -> tuple[bool, str]:
        text = req.text
        if len(text) >= self.params.long_prompt_chars:
            return True, f"prompt has {len(text)} chars >= long_prompt_chars {self.params.long_prompt_chars}"
        if self._hard_re is not None:
            m = self._hard_re.search(text.lower())
            if m:
                return True, f"prompt mentions {m.group(0)!r}"
        return False, f"prompt has {len(text)} chars < long_prompt_chars {self.params.long_prompt_chars} and no hard keyword"

    def target(self, req: Request) -> tuple[str, str, int, int, str]:
        """(pool, strategy, thinking budget, samples, why) the rule asks for."""
        cat = self.catalog
        if req.task is not None:
            pool = req.hint_pool or self.small
            return pool, "vote", 0, 0, f"decomposed task {getattr(req.task, 'task', '?')!r}: voting on pool {pool!r}"
        hard, why = self._is_hard(req)
        pool = req.hint_pool or (self.reasoning if hard else self.small)
        if req.hint_pool:
            why = f"hints.pool={req.hint_pool}"
        th = cat.pools[pool].thinking
        if cat.pools[pool].softcot is not None and "softcot" in cat.routing.strategies:
            default = "softcot"
        else:
            default = "think" if th is not None and "think" in cat.routing.strategies else "single"
        strategy = req.hint_strategy or default
        if req.hint_strategy:
            why += f"; hints.strategy={req.hint_strategy}"
        thinking = 0
        if strategy == "think" and th is not None:
            thinking = req.hint_thinking_budget if req.hint_thinking_budget is not None else th.budget_tokens
            thinking = min(thinking, cat.routing.max_thinking_tokens)
        samples = (req.hint_samples or min(cat.routing.best_of_n_samples)) if strategy == "best_of_n" else 1
        return pool, strategy, thinking, samples, why

    def score(self, req: Request, cands: list[Candidate]) -> str:
        pool, strategy, thinking, samples, why = self.target(req)
        if (strategy == "single" and not req.hint_strategy and "cascade" in self.catalog.routing.strategies
                and any(c.strategy == "cascade" and c.pool == pool and c.feasible for c in cands)):
            strategy = "cascade"
            why += f"; cascade listed: {pool} answers first and escalates when unsure"
        for c in cands:
            s = 0.5 * (c.pool == pool)
            if c.strategy == strategy:
                s += 0.25
                if strategy == "think":
                    s += 0.25 * _closeness(c.thinking_budget, thinking)
                elif strategy == "best_of_n":
                    s += 0.25 * _closeness(c.samples, samples)
                else:
                    s += 0.25
            c.score = round(s, 6)
        return why
