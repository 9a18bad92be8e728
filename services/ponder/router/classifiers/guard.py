"""The no-harm guard: shrink the routing gain towards the length-only prior when the model has no signal.

On some domains the prompt says little about which model will be right, and a
learned score then orders prompts by noise. The guard acts on the pair of
targets the router chooses between, ``roles`` = (weak, strong). With the
model's calibrated probabilities p_w, p_s, its gain g = p_s - p_w and the mean
m = (p_s + p_w)/2, the guarded probabilities are

    g' = (1 - β)·g + β·G(ℓ),   p'_s = m + g'/2,   p'_w = m - g'/2   (clipped to [0, 1]),
    G(ℓ) = ḡ + κ·(ℓ - ℓ̄)/σ_ℓ,   ℓ = log(1 + characters),

so the sum p_s + p_w stays the model's and only the gain (what the routing
order and the live policy's accuracy - λ·cost both decide on) is shrunk. G is
the length prior: ḡ the strong model's accuracy minus the weak one's on the
training rows, κ the least-squares slope of each target's outcome on the
standardised ℓ, strong minus weak, floored at ``MIN_SLOPE`` > 0 unless it is
clearly negative (below -2 standard errors). The floor keeps the prior's
direction that of the length-only baseline (longer prompts gain more from the
strong model) where the data do not clearly say otherwise: a direction fitted
on noise is reversed on held-out rows as often as not, which is worse than the
baseline. (The floor, 0.02 per standard deviation of ℓ, is below every fitted
slope of the shared tables, 0.03-0.12, and large enough that, under pooled
cross-validation, the order within a fold outweighs the folds' differing ḡ.)
At β = 1 the order is exactly the length-only order; other targets are untouched.

β ∈ [0, 1] is chosen by inner cross-validation on the training rows (standard
stacking: only out-of-fold predictions decide it). The rows are split into
``folds`` folds, grouped by ``groups`` (e.g. each row's source file or table)
when there are at least ``folds`` distinct groups, so the estimate asks whether
the model carries over to a source it has not seen; otherwise random. Per fold
a fresh classifier and G are fitted on the other folds and predict the held-out
fold. Criterion for each β on the grid 0, 1/steps, …, 1:

- with at least ``MIN_PAIRED`` rows per fold where both outcomes are known and
  the strong model is the more accurate: the mean over folds of the fold's APGR
  with prompts ordered by g' (the routing metric itself);
- otherwise (a serving log where each prompt went to one pool): minus the mean
  over the two targets of the out-of-fold log loss of p'.

The best β wins if it beats β = 1 (the length prior alone) by more than
``tolerance`` noise units; otherwise β = 1, so the length prior is kept unless
the model beats it on held-out rows by more than chance would. The noise unit is
the standard deviation of the fold-mean APGR over random orders of the same
rows (APGR), or the standard error of the paired per-row log-loss difference
between β = 0 and β = 1 (log loss).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

MIN_PAIRED = 30
MIN_SLOPE = 0.02
_EPS = 1e-6


def log_length(texts: Sequence[str]) -> np.ndarray:
    """ℓ = log(1 + number of characters) per prompt; shape (n,)."""
    return np.log1p(np.fromiter((len(t) for t in texts), dtype=np.float64, count=len(texts)))


@dataclasses.dataclass
class LengthPrior:
    """G(ℓ) = gain + slope·(ℓ - mean)/sd: the length-only gain of strong over weak, increasing in ℓ."""

    gain: float
    slope: float
    mean: float
    sd: float

    def __call__(self, ell: np.ndarray) -> np.ndarray:
        return self.gain + self.slope * (np.asarray(ell, dtype=np.float64) - self.mean) / self.sd


def fit_length_prior(ell: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> LengthPrior:
    """G from outcomes 1/0 with NaN for unknown (the two targets need not share rows); see the module docstring.

    A target with no known row contributes rate 0.5 and slope 0.
    """
    ell = np.asarray(ell, dtype=np.float64)
    mu, sd = float(ell.mean()), float(ell.std())
    sd = sd if sd > 1e-12 else 1.0
    z = (ell - mu) / sd
    rates, slopes = [], []
    for y in (np.asarray(weak, dtype=np.float64), np.asarray(strong, dtype=np.float64)):
        k = ~np.isnan(y)
        if not k.any():
            rates.append(0.5)
            slopes.append(0.0)
            continue
        zk, yk = z[k], y[k]
        rates.append(float(yk.mean()))
        var = float(np.var(zk))
        slopes.append(float(np.mean((zk - zk.mean()) * (yk - yk.mean())) / var) if var > 1e-12 else 0.0)
    slope = slopes[1] - slopes[0]
    # A reversed direction is kept only when it is clear (z < -2); anything else gets the baseline's direction.
    if slope < 0 and slope / _slope_se(z, weak, strong) < -2.0:
        return LengthPrior(rates[1] - rates[0], slope, mu, sd)
    return LengthPrior(rates[1] - rates[0], max(MIN_SLOPE, slope), mu, sd)


def _slope_se(z: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> float:
    """Standard error of the difference of the two least-squares slopes (treated as independent)."""
    var = 0.0
    for y in (np.asarray(weak, dtype=np.float64), np.asarray(strong, dtype=np.float64)):
        k = ~np.isnan(y)
        if k.sum() > 2:
            r = float(np.mean(y[k]))
            var += r * (1 - r) / (k.sum() * max(float(np.var(z[k])), 1e-12))
    return float(np.sqrt(var)) if var > 0 else float("inf")


def blend(p_weak: np.ndarray, p_strong: np.ndarray, prior_gain: np.ndarray, beta: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """(p'_w, p'_s): the model's mean kept, its gain blended with the prior's by ``beta``; each in [0, 1]."""
    m = (p_weak + p_strong) / 2
    g = (1.0 - beta) * (p_strong - p_weak) + beta * prior_gain
    return np.clip(m - g / 2, 0.0, 1.0), np.clip(m + g / 2, 0.0, 1.0)


@dataclasses.dataclass
class LengthGuard:
    """β, the length prior and the guarded pair (indices into the classifier's targets)."""

    beta: float
    prior: LengthPrior
    weak: str
    strong: str
    report: dict[str, Any] = dataclasses.field(default_factory=dict)

    def apply(self, probs: np.ndarray, texts: Sequence[str], targets: Sequence[str]) -> np.ndarray:
        """The classifier's calibrated ``probs`` (n, n_targets) with the pair's columns guarded; same shape."""
        if self.beta <= 0.0:
            return probs
        i, j = targets.index(self.weak), targets.index(self.strong)
        out = probs.copy()
        out[:, i], out[:, j] = blend(probs[:, i], probs[:, j], self.prior(log_length(texts)), self.beta)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"beta": self.beta, "prior": dataclasses.asdict(self.prior), "weak": self.weak,
                "strong": self.strong, "report": self.report}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LengthGuard":
        beta = float(d["beta"])
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"guard beta {beta} is outside [0, 1]")
        pr = d["prior"]
        prior = LengthPrior(float(pr["gain"]), float(pr["slope"]), float(pr["mean"]), float(pr["sd"]))
        return cls(beta, prior, str(d["weak"]), str(d["strong"]), dict(d.get("report", {})))


def assign_folds(n: int, folds: int, groups: Sequence[Any] | None, seed: int) -> tuple[np.ndarray, bool]:
    """(fold per row, grouped?): whole groups, largest first, into the fold with fewest rows when there are
    at least ``folds`` groups; else a seeded random split."""
    if groups is not None and len(set(groups)) >= folds:
        names, inverse, sizes = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True,
                                          return_counts=True)
        load = np.zeros(folds, dtype=np.int64)
        fold_of = np.zeros(len(names), dtype=np.int64)
        for g in sorted(range(len(names)), key=lambda g: (-sizes[g], names[g])):
            fold_of[g] = int(np.argmin(load))
            load[fold_of[g]] += sizes[g]
        return fold_of[inverse], True
    return np.random.default_rng(seed).permutation(n) % folds, False


def choose_beta(p_weak: np.ndarray, p_strong: np.ndarray, prior_gain: np.ndarray, weak: np.ndarray,
                strong: np.ndarray, fold: np.ndarray, steps: int = 10, tolerance: float = 1.0,
                noise_draws: int = 30, seed: int = 0) -> tuple[float, dict[str, Any]]:
    """β in [0, 1] from out-of-fold model probabilities, out-of-fold prior gains and outcomes (1/0, NaN unknown),
    all shape (n,), with ``fold`` (n,); see the module docstring. Returns (β, report with the criterion per β).
    """
    from ponder.router.classifiers import curves as M

    grid = np.linspace(0.0, 1.0, steps + 1)
    rng = np.random.default_rng(seed)
    per_fold = []
    for j in np.unique(fold):
        m = (fold == j) & ~np.isnan(weak) & ~np.isnan(strong)
        w, s = weak[m] > 0.5, strong[m] > 0.5
        if m.sum() < MIN_PAIRED or s.mean() <= w.mean():
            per_fold = []
            break
        per_fold.append((p_strong[m] - p_weak[m], prior_gain[m], w, s))
    if per_fold:
        crit = "apgr"
        values = [float(np.mean([M.apgr(M.router_curve((1 - b) * g + b * pg, w, s)) for g, pg, w, s in per_fold]))
                  for b in grid]
        draws = [np.mean([M.apgr(M.router_curve(rng.random(len(w)), w, s)) for _, _, w, s in per_fold])
                 for _ in range(noise_draws)]
        noise = float(np.std(draws, ddof=1))
    else:
        crit = "neg_log_loss"
        values, rows = [], []
        for b in grid:
            pw, ps = blend(p_weak, p_strong, prior_gain, b)
            per_row = []
            for p, y in ((pw, weak), (ps, strong)):
                k = ~np.isnan(y)
                q = np.clip(p[k], _EPS, 1 - _EPS)
                per_row.append(-np.where(y[k] > 0.5, np.log(q), np.log(1 - q)))
            values.append(-float(np.mean([r.mean() for r in per_row if len(r)])))
            rows.append(np.concatenate(per_row))
        d = rows[0] - rows[-1]
        noise = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    best = int(np.argmax(values))
    tol = tolerance * noise
    beta = float(grid[best]) if values[best] - values[-1] > tol else 1.0
    return beta, {"criterion": crit, "noise": round(noise, 6), "tolerance": round(tol, 6),
                  "by_beta": {f"{b:.2f}": round(v, 6) for b, v in zip(grid, values)},
                  "model_only": round(values[0], 6), "length_only": round(values[-1], 6)}


def fit_guard(make: Callable[[], Any], texts: list[str], labels: dict[str, np.ndarray], roles: tuple[str, str],
              groups: Sequence[Any] | None = None, folds: int = 3, seed: int = 0, steps: int = 10,
              tolerance: float = 1.0) -> LengthGuard:
    """Inner cross-validation of fresh classifiers from ``make()`` (fitted on all of ``labels``), then β
    (``choose_beta``) and the prior G fitted on all rows.

    A training fold where some target has one class (the classifier would refuse it) is left out of the
    estimate; with none left, β = 0 (the model as it is) and the report says why. ValueError when a role is
    not among ``labels``, ``folds`` < 2 or there are fewer rows than folds.
    """
    weak, strong = roles
    for r in roles:
        if r not in labels:
            raise ValueError(f"guard role {r!r} is not among the targets {sorted(labels)}")
    n = len(texts)
    if folds < 2 or n < folds:
        raise ValueError(f"the guard needs at least 2 folds and as many rows; got {folds} folds for {n} rows")
    ys = {t: np.asarray(y, dtype=np.float64) for t, y in labels.items()}
    ell = log_length(texts)
    fold, grouped = assign_folds(n, folds, groups, seed)
    pw, ps, pg = (np.full(n, np.nan) for _ in range(3))
    for j in range(folds):
        tr, te = np.flatnonzero(fold != j), np.flatnonzero(fold == j)
        fit_labels = {t: y[tr] for t, y in ys.items()}
        if not len(te) or any(np.nansum(y) == 0 or np.nansum(1 - y) == 0 for y in fit_labels.values()):
            continue
        clf = make().fit([texts[i] for i in tr], fit_labels)
        probs = clf.predict_proba([texts[i] for i in te])
        pw[te], ps[te] = probs[:, clf.targets.index(weak)], probs[:, clf.targets.index(strong)]
        pg[te] = fit_length_prior(ell[tr], ys[weak][tr], ys[strong][tr])(ell[te])
    done = ~np.isnan(pw)
    if not done.any():
        beta, report = 0.0, {"criterion": "none", "note": "no inner fold could be fitted; the model is used as is"}
    else:
        beta, report = choose_beta(pw[done], ps[done], pg[done], ys[weak][done], ys[strong][done], fold[done],
                                   steps, tolerance, seed=seed)
    report.update({"beta": beta, "folds": folds, "grouped": grouped, "rows": int(done.sum())})
    return LengthGuard(beta, fit_length_prior(ell, ys[weak], ys[strong]), weak, strong, report)
