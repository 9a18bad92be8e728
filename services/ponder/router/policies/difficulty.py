"""``difficulty``: budget-optimal plans from a difficulty classifier.

Candidates are (pool, strategy, samples n, thinking budget T) for every pool
with an accuracy estimate. Expected accuracy, from p = P(one plain sample of
the pool is correct) given by the classifier (or a tier prior):

- single: p.
- best_of_n, majority vote over n samples, modelled as n independent draws
  that are each right with probability p and a binary vote (all wrong answers
  agree — pessimistic), ties broken by a coin: Σ_{k>n/2} C(n,k) p^k (1−p)^(n−k)
  + ½·C(n,n/2) p^(n/2) (1−p)^(n/2) for even n. Below p = ½ voting hurts.
- think: logit(p_T) = logit(p) + g · log2(1 + T / think_ref_tokens), where g
  is the pool's thinking gain fitted by ``ponder router retrain`` from its
  think records (the classifier's ``report["think_logit_gain"][pool]``, used
  when its ``ref_tokens`` equal ``think_ref_tokens``), else the
  ``think_logit_gain`` prior. Think candidates' notes say which
  ("gain 0.62 (fitted, n=140)" or "gain 0.50 (prior)").

Expected cost and latency come from ``PoolCatalog.estimate``. A candidate
over ``budget.max_compute_units`` or expected to take longer than
``budget.max_latency_ms`` is infeasible (its note says which); the winner
maximises accuracy − λ·cost among the feasible ones; λ comes from the attached
budget controller, else ``lambda_per_cu``. Nothing feasible raises
BudgetInfeasible naming ``budget.max_compute_units`` when no candidate is cheap
enough, else ``budget.max_latency_ms`` with the fastest affordable candidate's
estimate. Hints restrict the candidates (pool, strategy, samples, thinking
budget).
"""
from __future__ import annotations

import math
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ponder.common.errors import ConfigError, InvalidArgument, UnknownPool
from ponder.router.classifiers.base import Classifier, load_classifier
from ponder.router.policies.base import Policy, PoolCatalog, infeasible, over_caps, register
from ponder.router.types import Candidate, Plan, Request

STRATEGIES = ("single", "best_of_n", "think")


class LambdaSource(Protocol):
    def lambda_per_cu(self) -> float: ...


class DifficultyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_dir: str | None = Field(None, description="Classifier model directory; unset: tier priors only.")
    pool_targets: dict[str, str] = Field(
        default_factory=dict,
        description="Pool -> classifier target. Unset pools: a target of the same name, else the model's "
        "weak role for small-tier pools and strong role for reasoning-tier pools.",
    )
    prior_accuracy: dict[str, float] = Field(
        default_factory=lambda: {"small": 0.6, "reasoning": 0.75, "softcot": 0.65},
        description="P(correct) per tier when the classifier has no target for a pool.",
    )
    lambda_per_cu: float = Field(1e-3, ge=0, description="Accuracy traded per compute unit without a budget controller.")
    strategies: list[Literal["single", "best_of_n", "think"]] = Field(
        default_factory=lambda: list(STRATEGIES), min_length=1, description="Strategies considered."
    )
    samples: list[int] = Field(default_factory=lambda: [3, 5], description="Sample counts tried for best_of_n.")
    thinking_multipliers: list[float] = Field(
        default_factory=lambda: [0.5, 1.0, 2.0], description="Thinking budgets tried, times the pool's budget_tokens."
    )
    think_logit_gain: float = Field(
        0.5, ge=0, description="Logit gain per doubling of 1 + T/think_ref_tokens, for pools without a gain "
        "fitted by `ponder router retrain` in the classifier's report.")
    think_ref_tokens: int = Field(256, ge=1, description="Thinking tokens that give one unit of log2 gain.")


def majority_vote_accuracy(p: float, n: int) -> float:
    """P(the majority of n independent binary votes is right), ties split evenly; in [0, 1]."""
    if n <= 1:
        return p
    k = np.arange(n + 1)
    log_c = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
    with np.errstate(divide="ignore"):
        logp = log_c + k * np.log(max(p, 1e-300)) + (n - k) * np.log(max(1 - p, 1e-300))
    probs = np.exp(logp)
    acc = probs[k * 2 > n].sum()
    if n % 2 == 0:
        acc += 0.5 * probs[n // 2]
    return float(min(1.0, max(0.0, acc)))


def thinking_accuracy(p: float, budget: int, gain: float, ref_tokens: int) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    z = math.log(p / (1 - p)) + gain * math.log2(1 + budget / ref_tokens)
    return 1 / (1 + math.exp(-z))


@register
class DifficultyPolicy(Policy):
    name = "difficulty"
    Params = DifficultyParams

    def __init__(self, params: DifficultyParams, catalog: PoolCatalog, classifier: Classifier | None = None):
        super().__init__(params, catalog)
        for pool in params.pool_targets:
            if pool not in catalog.pools:
                raise ConfigError("routing", [(f"routing.policy.params.pool_targets.{pool}",
                                               f"unknown pool {pool!r}; known: {sorted(catalog.pools)}")])
        self.budget: LambdaSource | None = None
        self.classifier: Classifier | None = None
        self._targets: dict[str, int] = {}
        self._gains: dict[str, tuple[float, int]] = {}
        if classifier is None and params.model_dir:
            classifier = load_classifier(params.model_dir)
        if classifier is not None:
            self.set_classifier(classifier)

    def set_classifier(self, clf: Classifier) -> None:
        """Swap in a (re)trained classifier; in-flight plans keep the one they started with."""
        roles = clf.report.get("roles", {})
        targets: dict[str, int] = {}
        for name, pool in self.catalog.pools.items():
            t = self.params.pool_targets.get(name)
            if t is None and name in clf.targets:
                t = name
            if t is None:
                t = {"small": roles.get("weak"), "reasoning": roles.get("strong")}.get(pool.tier)
            if t is not None and t in clf.targets:
                targets[name] = clf.targets.index(t)
            elif name in self.params.pool_targets:
                raise ConfigError("routing", [(f"routing.policy.params.pool_targets.{name}",
                                               f"classifier has no target {t!r}; it predicts {clf.targets}")])
        self.classifier, self._targets, self._gains = clf, targets, self._fitted_gains(clf)

    def _fitted_gains(self, clf: Classifier) -> dict[str, tuple[float, int]]:
        """Pool -> (gain, n) from the classifier's report, for pools of the catalog fitted at our ref tokens."""
        fitted = clf.report.get("think_logit_gain")
        out: dict[str, tuple[float, int]] = {}
        if not isinstance(fitted, dict):
            return out
        for pool, fit in fitted.items():
            if pool not in self.catalog.pools or not isinstance(fit, dict):
                continue
            g, n, ref = fit.get("gain"), fit.get("n"), fit.get("ref_tokens")
            if isinstance(g, (int, float)) and g >= 0 and ref == self.params.think_ref_tokens:
                out[pool] = (float(g), int(n) if isinstance(n, (int, float)) else 0)
        return out

    def think_gain(self, pool: str) -> tuple[float, str]:
        """The pool's thinking gain and where it came from (fitted, else the think_logit_gain prior)."""
        if pool in self._gains:
            g, n = self._gains[pool]
            return g, f"fitted, n={n}"
        return self.params.think_logit_gain, "prior"

    def set_budget(self, source: LambdaSource | None) -> None:
        self.budget = source

    def current_lambda(self) -> tuple[float, str]:
        if self.budget is not None:
            return self.budget.lambda_per_cu(), "budget controller"
        return self.params.lambda_per_cu, "lambda_per_cu"

    def pool_accuracy(self, req: Request) -> dict[str, tuple[float, str]]:
        """P(one plain sample correct) per pool, with where it came from."""
        clf, targets = self.classifier, self._targets
        out: dict[str, tuple[float, str]] = {}
        probs = clf.predict_proba([req.text])[0] if clf is not None and targets else None
        for name, pool in self.catalog.pools.items():
            if probs is not None and name in targets:
                out[name] = (float(probs[targets[name]]), "classifier")
            elif pool.tier in self.params.prior_accuracy:
                out[name] = (self.params.prior_accuracy[pool.tier], "prior")
        return out

    def _variants(self, req: Request, pool: str) -> list[tuple[str, int, int]]:
        cat, routing = self.catalog, self.catalog.cfg.routing
        strategies = [req.hint_strategy] if req.hint_strategy else self.params.strategies
        out: list[tuple[str, int, int]] = []
        for st in strategies:
            if st == "single":
                out.append(("single", 1, 0))
            elif st == "best_of_n":
                ns = [req.hint_samples] if req.hint_samples else self.params.samples
                out += [("best_of_n", n, 0) for n in ns if 2 <= n <= routing.max_samples]
            elif st == "think":
                th = cat.pools[pool].thinking
                if th is None:
                    continue
                if req.hint_thinking_budget is not None:
                    budgets = [req.hint_thinking_budget]
                else:
                    budgets = sorted({max(1, int(th.budget_tokens * m)) for m in self.params.thinking_multipliers})
                out += [("think", 1, min(b, routing.max_thinking_tokens)) for b in budgets]
        return out

    def _check_hints(self, req: Request) -> None:
        if req.hint_pool and req.hint_pool not in self.catalog.pools:
            raise UnknownPool("hints.pool", req.hint_pool, sorted(self.catalog.pools))
        if req.hint_strategy and req.hint_strategy not in STRATEGIES:
            raise InvalidArgument("hints.strategy", f"unknown strategy {req.hint_strategy!r}; known: {', '.join(STRATEGIES)}")

    async def plan(self, req: Request) -> Plan:
        self._check_hints(req)
        lam, lam_from = self.current_lambda()
        acc = self.pool_accuracy(req)
        pools = [req.hint_pool] if req.hint_pool else list(acc)
        cands: list[Candidate] = []
        for pool in pools:
            p, src = acc.get(pool, (self.params.prior_accuracy.get(self.catalog.pools[pool].tier, 0.5), "default"))
            gain, gain_src = self.think_gain(pool)
            for st, n, t in self._variants(req, pool):
                c = self.catalog.estimate(req, pool, st, n, t)
                if st == "best_of_n":
                    c.expected_accuracy = majority_vote_accuracy(p, n)
                elif st == "think":
                    c.expected_accuracy = thinking_accuracy(p, t, gain, self.params.think_ref_tokens)
                else:
                    c.expected_accuracy = p
                c.expected_accuracy = round(c.expected_accuracy, 6)
                c.score = round(c.expected_accuracy - lam * c.expected_compute_units, 6)
                c.note = f"p={p:.3f} ({src})"
                if st == "think":
                    c.note += f"; gain {gain:.2f} ({gain_src})"
                over = over_caps(c, req.max_compute_units, req.max_latency_ms)
                if over:
                    c.feasible = False
                    c.note += f"; {over}"
                cands.append(c)
        if not cands:
            raise InvalidArgument("hints.strategy", f"no plan matches the hints (pool {req.hint_pool or 'any'}, "
                                  f"strategy {req.hint_strategy or 'any'})")
        if not any(c.feasible for c in cands):
            raise infeasible(cands, req.max_compute_units, req.max_latency_ms)
        cands.sort(key=lambda c: (-c.feasible, -c.score, c.expected_compute_units))
        ok = [c for c in cands if c.feasible]
        win = cands[0]
        why = (f"max accuracy - lambda*cost with lambda={lam:.3g}/CU ({lam_from}): {win.pool}/{win.strategy}"
               f" n={win.samples} T={win.thinking_budget} acc {win.expected_accuracy:.3f} cost "
               f"{win.expected_compute_units} CU (~{win.expected_latency_ms:.0f} ms) score {win.score:.4f}")
        if len(ok) > 1:
            r = ok[1]
            why += f"; runner-up {r.pool}/{r.strategy} n={r.samples} T={r.thinking_budget} score {r.score:.4f}"
        return Plan(
            pool=win.pool, strategy=win.strategy, samples=win.samples, thinking_budget=win.thinking_budget,
            expected_compute_units=win.expected_compute_units, expected_latency_ms=win.expected_latency_ms,
            policy=self.name, reason=why, candidates=cands, context_id=req.context_id,
        )

