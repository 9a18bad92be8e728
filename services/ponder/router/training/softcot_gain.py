"""The soft-thought gain of SoftCoT pools, fitted from outcome records of ``softcot`` plans.

Model (the ``softcot`` strategy's accuracy model): a SoftCoT answer is right
with probability σ(logit(p) + g), where p = P(one plain sample of the same
pool's backbone is right) comes from the classifier trained on the pool's
``single`` records, and g is the pool's gain. g is the maximum-likelihood
value over the pool's labelled softcot records, searched in [-max_gain,
max_gain] (the negative log-likelihood is convex in g; scipy's bounded scalar
minimiser). Unlike thinking, soft thoughts may hurt, so g may be negative.

A pool gets no fit, with the reason in the returned ``skipped`` map, when the
classifier has no target for it (too few single records), it has fewer than
``min_rows`` softcot records, or they hold only one outcome. Fits go to
``report["softcot_logit_gain"] = {pool: {"gain", "n"}}``; the ``difficulty``
policy reads them in place of its ``softcot_logit_gain`` prior.
"""
from __future__ import annotations

from typing import Any

import numpy as np

MIN_SOFTCOT_ROWS = 30
MAX_GAIN = 10.0
_P_CLIP = 1e-6
REPORT_KEY = "softcot_logit_gain"


def softcot_nll(gain: float, p: np.ndarray, y: np.ndarray) -> float:
    """Negative log-likelihood of labels y under P(right) = σ(logit(p) + gain)."""
    p = np.clip(p, _P_CLIP, 1 - _P_CLIP)
    z = np.log(p / (1 - p)) + gain
    return float(np.sum(np.logaddexp(0.0, z) - y * z))


def fit_softcot_gain(p: np.ndarray, y: np.ndarray, max_gain: float = MAX_GAIN, tol: float = 1e-6) -> float:
    """Maximum-likelihood logit shift g in [-max_gain, max_gain] of labels ``y`` over baseline
    probabilities ``p`` (arrays of equal length, at least one of each label for an interior g)."""
    from scipy.optimize import minimize_scalar

    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    res = minimize_scalar(lambda g: softcot_nll(g, p, y), bounds=(-float(max_gain), float(max_gain)),
                          method="bounded", options={"xatol": tol})
    return float(res.x)


def fit_softcot_gains(prompts: list[str], pools: list[str], correct: list[bool], is_softcot: list[bool], clf,
                      min_rows: int = MIN_SOFTCOT_ROWS) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Per pool, the gain fitted on its softcot records (aligned lists); ``(fits, skipped reasons)``."""
    pools_a, sc = np.array(pools), np.array(is_softcot, dtype=bool)
    y_all = np.array(correct, dtype=np.float64)
    fits: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for pool in sorted(set(pools_a[sc].tolist())):
        idx = np.flatnonzero(sc & (pools_a == pool))
        n, pos = len(idx), int(y_all[idx].sum())
        if pool not in clf.targets:
            skipped[pool] = "no classifier target for the pool (too few single records)"
        elif n < min_rows:
            skipped[pool] = f"{n} softcot records < min_softcot_rows {min_rows}"
        elif pos in (0, n):
            skipped[pool] = f"only one class (all {'correct' if pos else 'wrong'})"
        else:
            p = clf.predict_proba([prompts[i] for i in idx])[:, clf.targets.index(pool)]
            fits[pool] = {"gain": round(fit_softcot_gain(p, y_all[idx]), 6), "n": n}
    return fits, skipped
