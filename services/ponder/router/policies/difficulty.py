"""``difficulty``: budget-optimal plans from a difficulty classifier.

For each pool, p = P(one plain sample of the pool is correct) comes from the
classifier (or a tier prior). Each feasible candidate's expected accuracy is
its strategy's accuracy model applied to p (``Strategy.accuracy``: a single
sample is p, best-of-n a majority vote, thinking a logit gain per doubling of
the budget, voting the task's success at its k), and its score

    expected accuracy − λ · expected compute units,

not normalised to [0, 1] because the trade-off is the point. λ comes from the
attached budget controller, else ``lambda_per_cu``. A strategy's gain (the
thinking gain g) is the pool's fitted gain from the classifier's report when
``ponder router retrain`` fitted one at ``think_ref_tokens``, else the prior
(``think_logit_gain``); likewise the soft-thought gain of SoftCoT pools (fitted
from softcot records, else ``softcot_logit_gain``). Candidates' notes say which.
"""
from __future__ import annotations

import copy

from pydantic import BaseModel, ConfigDict, Field

from ponder.common.errors import ConfigError
from ponder.router.classifiers.base import Classifier, load_classifier
from ponder.router.policies.base import Policy, register
from ponder.router.types import Candidate, Request


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
    think_logit_gain: float = Field(
        0.5, ge=0, description="Logit gain per doubling of 1 + T/think_ref_tokens, for pools without a gain "
        "fitted by `ponder router retrain` in the classifier's report.")
    think_ref_tokens: int = Field(256, ge=1, description="Thinking tokens that give one unit of log2 gain.")
    softcot_logit_gain: float = Field(
        0.0, description="Logit gain of soft thoughts over a plain sample of the same backbone, until feedback "
        "fits one; 0: a SoftCoT plan must win on its backbone's own accuracy.")


class _Gains:
    """Fitted gains per (strategy, pool) with the params' priors as fallback."""

    def __init__(self, params: DifficultyParams, fitted: dict[str, tuple[float, int]],
                 softcot_fitted: dict[str, tuple[float, int]] | None = None):
        self.ref_tokens = params.think_ref_tokens
        self._priors = {"think": params.think_logit_gain, "softcot": params.softcot_logit_gain}
        self._fitted = {"think": fitted, "softcot": softcot_fitted or {}}
        self._pool_p: dict[str, tuple[float, str]] = {}
        self.lambda_per_cu: float | None = None

    def gain(self, strategy: str, pool: str) -> tuple[float, str]:
        fitted = self._fitted.get(strategy, {})
        if pool in fitted:
            g, n = fitted[pool]
            return g, f"fitted, n={n}"
        return self._priors.get(strategy, 0.0), "prior"

    def for_request(self, acc: dict[str, tuple[float, str]], lambda_per_cu: float | None = None) -> "_Gains":
        """These gains plus one request's P(correct) per pool (``pool_p``) and the λ it is planned at
        (``lambda_per_cu``), both read by the cascade."""
        g = copy.copy(self)
        g._pool_p = acc
        g.lambda_per_cu = lambda_per_cu
        return g

    def pool_p(self, pool: str) -> float | None:
        """The request's P(one plain sample of ``pool`` is correct); None outside ``for_request``."""
        hit = self._pool_p.get(pool)
        return hit[0] if hit is not None else None


@register
class DifficultyPolicy(Policy):
    name = "difficulty"
    Params = DifficultyParams
    uses_budget = True

    def __init__(self, params: DifficultyParams, catalog, classifier: Classifier | None = None):
        super().__init__(params, catalog)
        for pool in params.pool_targets:
            if pool not in catalog.pools:
                raise ConfigError("routing", [(f"routing.policy.params.pool_targets.{pool}",
                                               f"unknown pool {pool!r}; known: {sorted(catalog.pools)}")])
        self.classifier: Classifier | None = None
        self._targets: dict[str, int] = {}
        self.gains = _Gains(params, {})
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
        self.classifier, self._targets = clf, targets
        self.gains = _Gains(self.params, self._fitted_gains(clf), self._fitted_softcot_gains(clf))

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

    def _fitted_softcot_gains(self, clf: Classifier) -> dict[str, tuple[float, int]]:
        """Pool -> (gain, n) of the soft-thought gains retrain fitted (any sign), for pools of the catalog."""
        fitted = clf.report.get("softcot_logit_gain")
        out: dict[str, tuple[float, int]] = {}
        for pool, fit in (fitted.items() if isinstance(fitted, dict) else ()):
            g, n = (fit.get("gain"), fit.get("n")) if isinstance(fit, dict) else (None, None)
            if pool in self.catalog.pools and isinstance(g, (int, float)) and abs(g) < float("inf"):
                out[pool] = (float(g), int(n) if isinstance(n, (int, float)) else 0)
        return out

    def think_gain(self, pool: str) -> tuple[float, str]:
        """The pool's thinking gain and where it came from (fitted, else the think_logit_gain prior)."""
        return self.gains.gain("think", pool)

    def current_lambda(self) -> tuple[float, str]:
        if self.budget is not None:
            return self.budget.lambda_per_cu(), "budget controller"
        return self.params.lambda_per_cu, "lambda_per_cu"

    def pool_accuracy(self, req: Request) -> dict[str, tuple[float, str]]:
        """P(one plain sample correct) per pool, with where it came from."""
        clf, targets = self.classifier, self._targets
        out: dict[str, tuple[float, str]] = {}
        probs = clf.predict_proba([req.text])[0] if clf is not None and targets and req.task is None else None
        for name, pool in self.catalog.pools.items():
            if probs is not None and name in targets:
                out[name] = (float(probs[targets[name]]), "classifier")
            else:
                out[name] = (self.params.prior_accuracy.get(pool.tier, 0.5), "prior")
        return out

    def score(self, req: Request, cands: list[Candidate]) -> str:
        lam, lam_from = self.current_lambda()
        acc = self.pool_accuracy(req)
        strategies = self.catalog.strategies
        gains = self.gains.for_request(acc, lam)
        for c in cands:
            p, src = acc[c.pool]
            a, model_note = strategies[c.strategy].accuracy(c, p, gains)
            c.expected_accuracy = round(a, 6)
            c.score = round(c.expected_accuracy - lam * c.expected_compute_units, 6)
            note = f"p={p:.3f} ({src})" + (f"; {model_note}" if model_note else "")
            c.note = f"{c.note}; {note}" if c.note else note
        best = sorted((c for c in cands if c.feasible), key=lambda c: (-c.score, c.expected_compute_units))
        win = best[0]
        why = (f"max accuracy - lambda*cost with lambda={lam:.3g}/CU ({lam_from}): {win.pool}/{win.strategy}"
               f" n={win.samples} T={win.thinking_budget} acc {win.expected_accuracy:.3f} cost "
               f"{win.expected_compute_units} CU (~{win.expected_latency_ms:.0f} ms) score {win.score:.4f}")
        if len(best) > 1:
            r = best[1]
            why += f"; runner-up {r.pool}/{r.strategy} n={r.samples} T={r.thinking_budget} score {r.score:.4f}"
        return why
