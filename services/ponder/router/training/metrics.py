"""Router metrics on outcome tables (RouteLLM's definitions).

A router ranks prompts by a score; at strong-call share x the top ``x·n``
prompts go to the strong model and the rest to the weak one. The curve is
evaluated at every achievable share ``k/n`` (k = 0..n), so nothing is lost to a
coarse grid. Prompts with tied scores are routed in random order; the curve
reports the expected accuracy over that order (linear across each tie group).

- PGR(x) = (acc(x) - acc_weak) / (acc_strong - acc_weak)
- APGR = (trapezoid area under acc(x) for x in [0, 1] - acc_weak) / (acc_strong - acc_weak)
- CPT(p) = smallest share x with acc(x) >= acc_weak + p/100 · (acc_strong - acc_weak)

The random router's curve is the straight line from acc_weak to acc_strong
(APGR 0.5); the oracle routes first the prompts only the strong model gets
right, then the ones where both agree, last the ones only the weak model gets
right. All metrics raise MetricUndefined when acc_strong <= acc_weak.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ponder.router.classifiers.calibration import expected_calibration_error as _ece
from ponder.router.classifiers.curves import (  # noqa: F401 - re-exported: the metrics' public names
    Curve, MetricUndefined, _gap, apgr, oracle_curve, pgr, random_curve, router_curve,
)


def cpt(c: Curve, percent: float) -> float:
    """Smallest strong share reaching ``percent`` % of the weak→strong gap; in [0, 1]."""
    target = c.acc_weak + percent / 100.0 * _gap(c)
    hit = np.flatnonzero(c.acc >= target - 1e-12)
    return float(c.x[hit[0]]) if len(hit) else 1.0


def summary(c: Curve) -> dict[str, float]:
    return {
        "apgr": apgr(c),
        "cpt50": cpt(c, 50),
        "cpt80": cpt(c, 80),
        "pgr_at_50": pgr(c, 0.5),
        "acc_weak": c.acc_weak,
        "acc_strong": c.acc_strong,
    }


def expected_calibration_error(prob: np.ndarray, label: np.ndarray, bins: int = 10) -> float:
    """ECE (``classifiers.calibration.expected_calibration_error``); MetricUndefined on no rows."""
    if len(prob) == 0:
        raise MetricUndefined("no rows")
    return _ece(prob, label, bins)


@dataclasses.dataclass(frozen=True)
class CostCurve:
    """Accuracy ``acc[k]`` at normalised mean cost ``x[k]`` (0: every prompt to the cheapest model,
    1: every prompt to the most expensive), ``x`` ascending."""

    x: np.ndarray
    acc: np.ndarray

    def area(self) -> float:
        """Trapezoid area under the curve over x in [0, 1], flat beyond its ends; in [0, 1]."""
        x = np.clip(np.r_[0.0, self.x, 1.0], 0.0, 1.0)
        acc = np.r_[self.acc[0], self.acc, self.acc[-1]]
        return float(np.sum((acc[1:] + acc[:-1]) * np.diff(x)) / 2.0)


def _check_costs(costs: np.ndarray, m: int) -> np.ndarray:
    costs = np.asarray(costs, dtype=np.float64)
    if costs.shape != (m,):
        raise MetricUndefined(f"{costs.size} costs for {m} models")
    if (costs <= 0).any() or costs.max() == costs.min():
        raise MetricUndefined(f"costs must be positive and not all equal, got {costs.tolist()}")
    return costs


def cost_curve(scores: np.ndarray, outcomes: np.ndarray, costs: np.ndarray, n_lambdas: int = 200) -> CostCurve:
    """Accuracy against mean cost when each prompt goes to argmax_i score_i - λ·cost_i, over a sweep of λ.

    ``scores`` (n, m): per-model P(correct) (or the outcomes themselves for the
    oracle); ``outcomes`` (n, m) booleans; ``costs`` (m,) positive. λ runs
    from 0 (best score, any price) to ∞ (cheapest model) over ``n_lambdas``
    geometric steps; the points are sorted by cost. Ties in score go to the
    cheaper model.
    """
    scores = np.asarray(scores, dtype=np.float64)
    outcomes = np.asarray(outcomes, dtype=np.float64)
    if scores.shape != outcomes.shape or scores.ndim != 2 or not len(scores):
        raise MetricUndefined(f"scores {scores.shape} and outcomes {outcomes.shape} must be one (n, m) shape")
    costs = _check_costs(costs, scores.shape[1])
    lo, hi = costs.min(), costs.max()
    order = np.argsort(costs, kind="stable")  # argmax keeps the first maximum: the cheaper model on ties
    s, o, c = scores[:, order], outcomes[:, order], costs[order]
    rows = np.arange(len(s))
    lambdas = np.r_[0.0, np.geomspace(1e-4, 1e2, n_lambdas) / (hi - lo), np.inf]
    xs, accs = [], []
    for lam in lambdas:
        pick = np.zeros(len(s), dtype=np.int64) if np.isinf(lam) else np.argmax(s - lam * c, axis=1)
        xs.append((c[pick].mean() - lo) / (hi - lo))
        accs.append(o[rows, pick].mean())
    xs, accs = np.array(xs), np.array(accs)
    idx = np.lexsort((accs, xs))
    return CostCurve(xs[idx], accs[idx])


def cost_summary(probs: np.ndarray, outcomes: np.ndarray, costs: np.ndarray, names: list[str]) -> dict:
    """Area under accuracy vs normalised mean cost for the router (``probs``) and the baselines.

    ``random``: a random mix of the cheapest and the most expensive model
    (the straight line between them); ``best_single``: the most accurate
    single model affordable at each cost (a step); ``oracle``: the cheapest
    correct model per prompt. Also the single models' accuracy and cost.
    """
    outcomes = np.asarray(outcomes, dtype=np.float64)
    costs = _check_costs(costs, outcomes.shape[1])
    lo, hi = costs.min(), costs.max()
    acc = outcomes.mean(axis=0)
    x_single = (costs - lo) / (hi - lo)
    grid = np.linspace(0.0, 1.0, 201)
    step = np.array([acc[x_single <= g + 1e-12].max() for g in grid])
    cheap, dear = int(np.argmin(costs)), int(np.argmax(costs))
    router = cost_curve(probs, outcomes, costs)
    best = int(np.argmax(acc))
    return {
        "auc": router.area(),
        "baselines": {
            "random": {"auc": CostCurve(np.array([0.0, 1.0]), np.array([acc[cheap], acc[dear]])).area()},
            "best_single": {"auc": CostCurve(grid, step).area(), "model": names[best], "acc": float(acc[best]),
                            "cost_share": float(x_single[best])},
            "oracle": {"auc": cost_curve(outcomes, outcomes, costs).area()},
        },
        "models": {n: {"acc": float(a), "cost": float(c)} for n, a, c in zip(names, acc, costs)},
        "curve": {"x": [round(float(v), 4) for v in router.x], "acc": [round(float(v), 4) for v in router.acc]},
    }
