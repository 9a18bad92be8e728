"""The no-harm guard: shrink a classifier towards a length-only prior when it has no signal.

On some domains the prompt says little about which model will be right, and a
learned score then orders prompts by noise. The guard blends every target's
calibrated probability with a length-only model of the same target,

    p'_t(x) = (1 - β)·p_t(x) + β·q_t(ℓ),   q_t(ℓ) = sigmoid(a_t·ℓ + c_t),   ℓ = log(1 + characters),

with one weight β ∈ [0, 1] for all targets, chosen by inner cross-validation on
the training rows (standard stacking: only out-of-fold predictions decide it).
A mixture of calibrated probabilities stays calibrated, and the routing gain
P'(strong) - P'(weak) is the same blend of the model's gain and the length
model's gain, so the live policy (accuracy - λ·cost) and the offline order get
the same guard.

Choosing β (``fit_guard``): the rows are split into ``folds`` folds, grouped by
``groups`` (e.g. the source file or table of each row) when there are at least
``folds`` distinct groups, so the inner estimate asks "does the model carry
over to rows of a source it has not seen"; otherwise random. Per fold a fresh
classifier and the length models are fitted on the other folds and predict
the held-out fold. Criterion for each β on the grid ``0, 1/steps, …, 1``:

- with ``roles`` = (weak, strong) and at least ``MIN_PAIRED`` rows per fold
  where both outcomes are known and the strong model is more accurate: the
  mean over folds of the fold's APGR when prompts are ordered by the blended
  gain (the routing metric itself);
- otherwise (e.g. a serving log where each prompt went to one pool): minus the
  mean over targets of the out-of-fold log loss of the blend.

The largest β within ``tolerance`` of the best criterion wins, so the length
prior is kept unless the model beats it on held-out rows. β = 1 is the full
fall-back: the order is then the length model's alone.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np
from scipy.special import expit

MIN_PAIRED = 30
_EPS = 1e-6


def log_length(texts: Sequence[str]) -> np.ndarray:
    """ℓ = log(1 + number of characters) per prompt; shape (n,)."""
    return np.log1p(np.fromiter((len(t) for t in texts), dtype=np.float64, count=len(texts)))


def fit_length_model(ell: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> tuple[float, float]:
    """(a, c) of P(correct) = sigmoid(a·ℓ + c) by L2-penalised logistic regression on the rows where ``y`` is known.

    ``y``: 1/0 (or bool), NaN for unknown. One class (or no rows): a = 0 and c the smoothed log-odds of the rate.
    """
    from ponder.router.classifiers.linear import Features, fit_logistic

    y = np.asarray(y, dtype=np.float64)
    known = ~np.isnan(y)
    ell, yk = np.asarray(ell, dtype=np.float64)[known], y[known] > 0.5
    pos = int(yk.sum())
    if pos in (0, len(yk)) or np.ptp(ell) < 1e-12:
        r = (pos + 1) / (len(yk) + 2)
        return 0.0, float(np.log(r / (1 - r)))
    m = fit_logistic(Features(ell[:, None], None), yk, l2, 200)
    a = float(m.wd[0] / m.sd[0])
    return a, float(m.b - a * m.mu[0])


@dataclasses.dataclass
class LengthGuard:
    """β and per-target length models (a_t, c_t), aligned with the classifier's targets."""

    beta: float
    coef: list[tuple[float, float]]
    report: dict[str, Any] = dataclasses.field(default_factory=dict)

    def apply(self, probs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Blend ``probs`` (n, n_targets) with the length models; same shape, in [0, 1]."""
        if self.beta <= 0.0:
            return probs
        ell = log_length(texts)
        q = expit(np.outer(ell, [a for a, _ in self.coef]) + np.array([c for _, c in self.coef]))
        return (1.0 - self.beta) * probs + self.beta * q

    def to_dict(self) -> dict[str, Any]:
        return {"beta": self.beta, "coef": [list(c) for c in self.coef], "report": self.report}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LengthGuard":
        beta = float(d["beta"])
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"guard beta {beta} is outside [0, 1]")
        return cls(beta, [(float(a), float(c)) for a, c in d["coef"]], dict(d.get("report", {})))


def assign_folds(n: int, folds: int, groups: Sequence[Any] | None, seed: int) -> tuple[np.ndarray, bool]:
    """(fold per row, grouped?): whole groups into the fold with fewest rows when there are ≥ ``folds`` groups."""
    if groups is not None and len(set(groups)) >= folds:
        names, inverse, sizes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True,
                                          return_counts=True)
        load = np.zeros(folds, dtype=np.int64)
        fold_of = np.zeros(len(names), dtype=np.int64)
        for g in sorted(range(len(names)), key=lambda g: (-sizes[g], names[g])):
            fold_of[g] = int(np.argmin(load))
            load[fold_of[g]] += sizes[g]
        return fold_of[inverse], True
    return np.random.default_rng(seed).permutation(n) % folds, False


def blend_grid(steps: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, steps + 1)


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def choose_beta(model: dict[str, np.ndarray], length: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                fold: np.ndarray, roles: tuple[str, str] | None, steps: int = 10,
                tolerance: float = 0.0) -> tuple[float, dict[str, Any]]:
    """β from out-of-fold probabilities of the model and of the length models (see the module docstring).

    ``model``/``length``/``labels``: {target: array (n,)} with NaN labels for unknown outcomes; ``fold`` (n,).
    Returns (β in [0, 1], report with the criterion and its value per β).
    """
    from ponder.router.training import metrics as M

    grid = blend_grid(steps)
    per_fold: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    if roles is not None and all(r in labels for r in roles):
        w_all, s_all = labels[roles[0]], labels[roles[1]]
        for j in np.unique(fold):
            m = (fold == j) & ~np.isnan(w_all) & ~np.isnan(s_all)
            w, s = w_all[m] > 0.5, s_all[m] > 0.5
            if m.sum() < MIN_PAIRED or s.mean() <= w.mean():
                per_fold = []
                break
            g_model = model[roles[1]][m] - model[roles[0]][m]
            g_len = length[roles[1]][m] - length[roles[0]][m]
            per_fold.append((g_model, g_len, w, s))
    if per_fold:
        crit = "apgr"
        values = [float(np.mean([M.apgr(M.router_curve((1 - b) * gm + b * gl, w, s)) for gm, gl, w, s in per_fold]))
                  for b in grid]
    else:
        crit = "neg_log_loss"
        values = []
        for b in grid:
            losses = []
            for t, y in labels.items():
                k = ~np.isnan(y)
                losses.append(_log_loss((1 - b) * model[t][k] + b * length[t][k], y[k] > 0.5))
            values.append(-float(np.mean(losses)))
    best = max(values)
    beta = float(max(b for b, v in zip(grid, values) if v >= best - tolerance))
    return beta, {"criterion": crit, "by_beta": {f"{b:.2f}": round(v, 6) for b, v in zip(grid, values)},
                  "model_only": round(values[0], 6), "length_only": round(values[-1], 6)}


def fit_guard(make: Callable[[], Any], texts: list[str], labels: dict[str, np.ndarray],
              roles: tuple[str, str] | None = None, groups: Sequence[Any] | None = None, folds: int = 3,
              seed: int = 0, steps: int = 10, tolerance: float = 0.0) -> LengthGuard:
    """Inner cross-validation of fresh classifiers from ``make()``, then β (``choose_beta``) and the
    final length models fitted on all rows. Targets come out in ``labels`` order (the order ``fit`` uses).

    A target with one class in a training fold (the classifier would refuse it) leaves that fold out of
    the estimate. ValueError when ``folds`` < 2 or there are fewer rows than folds.
    """
    n = len(texts)
    if folds < 2 or n < folds:
        raise ValueError(f"the guard needs at least 2 folds and as many rows; got {folds} folds for {n} rows")
    ys = {t: np.asarray(y, dtype=np.float64) for t, y in labels.items()}
    ell = log_length(texts)
    fold, grouped = assign_folds(n, folds, groups, seed)
    oof_model = {t: np.full(n, np.nan) for t in ys}
    oof_len = {t: np.full(n, np.nan) for t in ys}
    for j in range(folds):
        tr, te = np.flatnonzero(fold != j), np.flatnonzero(fold == j)
        fit_labels = {t: y[tr] for t, y in ys.items()}
        if not len(te) or any(np.nansum(y) == 0 or np.nansum(1 - y) == 0 for y in fit_labels.values()):
            continue
        clf = make().fit([texts[i] for i in tr], fit_labels)
        probs = clf.predict_proba([texts[i] for i in te])
        for t in ys:
            oof_model[t][te] = probs[:, clf.targets.index(t)]
            a, c = fit_length_model(ell[tr], ys[t][tr])
            oof_len[t][te] = expit(a * ell[te] + c)
    done = ~np.isnan(next(iter(oof_model.values())))
    if not done.any():
        beta, report = 0.0, {"criterion": "none", "note": "no inner fold could be fitted; the model is used as is"}
    else:
        beta, report = choose_beta({t: v[done] for t, v in oof_model.items()},
                                   {t: v[done] for t, v in oof_len.items()},
                                   {t: y[done] for t, y in ys.items()}, fold[done], roles, steps, tolerance)
    report.update({"beta": beta, "folds": folds, "grouped": grouped, "rows": int(done.sum())})
    return LengthGuard(beta, [fit_length_model(ell, ys[t]) for t in ys], report)
