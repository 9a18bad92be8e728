"""``hashed-linear``: the fast default, numpy only. Logistic regression on
structural features plus one stacked n-gram feature (see ``features``).

The n-gram part is a naive-Bayes log-count ratio per hashed character n-gram
bucket, r[h] = log((pos[h] + α)/(|pos| + αH)) − log((neg[h] + α)/(|neg| + αH))
(Wang & Manning 2012), where pos/neg sum each row's n-gram shares by label. A
prompt's n-gram feature is the mean of r over its n-grams. During training the
feature is cross-fitted (each row scored by ratios from the other folds) so
the logistic regression does not trust an overfit score; at inference the
ratios from all training rows are used, pre-multiplied by the learned
coefficient, so a prompt costs one gather and a mean.

Training is scikit-learn's ``LogisticRegression`` (mean log loss + ½·l2·|w|²,
L-BFGS), one model per target; dense features are standardised with the
training mean and deviation. Scoring is the closed form (a dot product), so
the router calls no estimator per prompt.
Calibration is cross-fitted too: models trained on the other
``calibration_folds`` folds score each fold, the calibrator is fitted on those
out-of-fold scores (their ECE before and after lands in ``report``), then the
final model is trained on everything.
"""
from __future__ import annotations

import pathlib
import warnings
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import expit as sigmoid

from ponder.router.classifiers.base import Classifier, register
from ponder.router.classifiers.calibration import Calibrator, expected_calibration_error
from ponder.router.classifiers.threads import one_thread
from ponder.router.classifiers.features import (
    SparseRows, ngram_buckets, sparse_ngrams, structural, structural_matrix,
)


class CalibratedLinearParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    l2_structural: float = Field(1e-2, ge=0, description="L2 penalty on the dense (structural/embedding) weights.")
    max_iter: int = Field(200, ge=1, le=10000, description="L-BFGS iterations per fit.")
    calibration: Literal["platt", "isotonic", "none"] = Field("platt", description="Probability calibration.")
    calibration_folds: int = Field(3, ge=2, le=20, description="Folds for cross-fitted calibration.")
    seed: int = Field(0, description="Seed for the calibration folds.")


class HashedLinearParams(CalibratedLinearParams):
    hash_bits: int = Field(18, ge=8, le=24, description="log2 of the number of n-gram buckets.")
    ngram_orders: tuple[int, ...] = Field((4,), min_length=1, description="Character n-gram lengths.")
    nb_alpha: float = Field(1.0, gt=0, description="Additive smoothing of the n-gram log-count ratios.")
    nb_folds: int = Field(3, ge=2, le=20, description="Folds for cross-fitting the n-gram feature in training.")
    use_ngrams: bool = Field(True, description="False: structural features only.")


class Features:
    """Featurised prompts: dense matrix plus optional hashed n-gram rows."""

    def __init__(self, dense: np.ndarray, sparse: SparseRows | None):
        self.dense, self.sparse = dense, sparse

    def take(self, rows: np.ndarray) -> "Features":
        return Features(self.dense[rows], self.sparse.take(rows) if self.sparse is not None else None)


class LinearModel:
    """z = standardised(dense) · wd + ngram_rows · ws + b."""

    def __init__(self, mu: np.ndarray, sd: np.ndarray, wd: np.ndarray, ws: np.ndarray | None, b: float):
        self.mu, self.sd, self.wd, self.ws, self.b = mu, sd, wd, ws, b

    def score(self, f: Features) -> np.ndarray:
        z = ((f.dense - self.mu) / self.sd) @ self.wd + self.b
        if f.sparse is not None and self.ws is not None:
            z = z + f.sparse.dot(self.ws)
        return z


def fit_logistic(f: Features, y: np.ndarray, l2_dense: float, max_iter: int) -> LinearModel:
    """Logistic regression on the standardised dense features of ``f`` (its sparse part is not used).

    Minimises mean log loss + ½·l2_dense·|w|² (intercept unpenalised) with
    scikit-learn's ``LogisticRegression`` (L-BFGS; C = 1/(l2_dense·n), no
    penalty when l2_dense is 0). Both classes must be present (ValueError).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y).astype(bool)
    mu = f.dense.mean(axis=0)
    sd = f.dense.std(axis=0)
    sd[sd < 1e-9] = 1.0
    xd = (f.dense - mu) / sd
    if l2_dense > 0:
        m = LogisticRegression(C=1.0 / (l2_dense * len(y)), solver="lbfgs", max_iter=max_iter)
    else:
        m = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=max_iter)
    with warnings.catch_warnings(), one_thread():
        # A capped iteration count is a choice (max_iter), not an error.
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(xd, y)
    return LinearModel(mu, sd, m.coef_[0].astype(np.float64), None, float(m.intercept_[0]))


class CalibratedLinear(Classifier):
    """Shared training for linear classifiers over a featuriser; subclasses define ``featurize``."""

    Params = CalibratedLinearParams

    def __init__(self, params: CalibratedLinearParams):
        super().__init__(params)
        self.models: list[LinearModel] = []

    def featurize(self, texts: list[str]) -> Features:
        raise NotImplementedError

    def _fit_model(self, f: Features, y: np.ndarray) -> LinearModel:
        return fit_logistic(f, y, self.params.l2_structural, self.params.max_iter)

    def fit(self, texts: list[str], labels: dict[str, np.ndarray]) -> "CalibratedLinear":
        if not labels:
            raise ValueError("no targets to fit")
        f = self.featurize(texts)
        n = len(texts)
        k = min(self.params.calibration_folds, n)
        fold = np.random.default_rng(self.params.seed).permutation(n) % k
        self.targets, self.models, self.calibrators = [], [], []
        self.report = {"n": n, "targets": {}}
        for target, y in labels.items():
            y = np.asarray(y, dtype=np.float64)
            # NaN marks rows without an outcome for this target (e.g. another pool served them).
            known = np.flatnonzero(~np.isnan(y))
            ft, y, fk = f.take(known), y[known] > 0.5, fold[known]
            oof = np.zeros(len(known))
            for j in range(k):
                tr, te = np.flatnonzero(fk != j), np.flatnonzero(fk == j)
                if len(te) and len(tr):
                    oof[te] = self._fit_model(ft.take(tr), y[tr]).score(ft.take(te))
            cal = Calibrator.fit(self.params.calibration, oof, y)
            self.report["targets"][target] = {
                "n": int(len(known)),
                "base_rate": float(y.mean()),
                "ece_uncalibrated": expected_calibration_error(sigmoid(oof), y),
                "ece_calibrated": expected_calibration_error(cal(oof), y),
                "calibration": self.params.calibration,
            }
            self.targets.append(target)
            self.calibrators.append(cal)
            self.models.append(self._fit_model(ft, y))
        return self

    def raw_scores(self, texts: list[str]) -> np.ndarray:
        f = self.featurize(texts)
        return np.column_stack([m.score(f) for m in self.models]) if self.models else np.zeros((len(texts), 0))

    def save_arrays(self, directory: pathlib.Path) -> None:
        arrays = {}
        for j, m in enumerate(self.models):
            arrays.update({f"mu{j}": m.mu, f"sd{j}": m.sd, f"wd{j}": m.wd, f"b{j}": np.array([m.b])})
            if m.ws is not None:
                arrays[f"ws{j}"] = m.ws.astype(np.float32)
        np.savez(directory / "weights.npz", **arrays)

    def load_arrays(self, directory: pathlib.Path) -> None:
        with np.load(directory / "weights.npz") as z:
            self.models = [
                LinearModel(z[f"mu{j}"], z[f"sd{j}"], z[f"wd{j}"],
                            z[f"ws{j}"].astype(np.float64) if f"ws{j}" in z else None, float(z[f"b{j}"][0]))
                for j in range(len(self.targets))
            ]


def nb_ratios(sp: SparseRows, y: np.ndarray, alpha: float) -> np.ndarray:
    """Naive-Bayes log-count ratio per bucket from rows ``sp`` with boolean labels ``y``."""
    lab = y[sp.row_of].astype(np.float64)
    pos = np.bincount(sp.indices, weights=lab * sp.values, minlength=sp.n_cols)
    neg = np.bincount(sp.indices, weights=(1.0 - lab) * sp.values, minlength=sp.n_cols)
    h = sp.n_cols
    return np.log((pos + alpha) / (pos.sum() + alpha * h)) - np.log((neg + alpha) / (neg.sum() + alpha * h))


@register
class HashedLinear(CalibratedLinear):
    name = "hashed-linear"
    Params = HashedLinearParams

    def featurize(self, texts: list[str]) -> Features:
        p = self.params
        sparse = sparse_ngrams(texts, p.ngram_orders, p.hash_bits) if p.use_ngrams else None
        return Features(structural_matrix(texts), sparse)

    def _fit_model(self, f: Features, y: np.ndarray) -> LinearModel:
        p = self.params
        if f.sparse is None:
            return fit_logistic(f, y, p.l2_structural, p.max_iter)
        n = len(y)
        fold = np.random.default_rng(p.seed + 1).permutation(n) % min(p.nb_folds, n)
        stacked = np.zeros(n)
        for j in range(fold.max() + 1):
            tr, te = np.flatnonzero(fold != j), np.flatnonzero(fold == j)
            if len(tr) and len(te):
                stacked[te] = f.sparse.take(te).dot(nb_ratios(f.sparse.take(tr), y[tr], p.nb_alpha))
        m = fit_logistic(Features(np.c_[f.dense, stacked], None), y, p.l2_structural, p.max_iter)
        # Fold the stacked feature's standardisation and coefficient into the bucket weights.
        coef = m.wd[-1] / m.sd[-1]
        ratios = nb_ratios(f.sparse, y, p.nb_alpha)
        return LinearModel(m.mu[:-1], m.sd[:-1], m.wd[:-1], coef * ratios, m.b - coef * m.mu[-1])

    def raw_scores(self, texts: list[str]) -> np.ndarray:
        # Per-prompt path without building sparse rows: the router scores one prompt at a time.
        p = self.params
        out = np.empty((len(texts), len(self.models)))
        for i, t in enumerate(texts):
            x = structural(t)
            buckets = ngram_buckets(t, p.ngram_orders, p.hash_bits) if p.use_ngrams else None
            for j, m in enumerate(self.models):
                z = ((x - m.mu) / m.sd) @ m.wd + m.b
                if buckets is not None and m.ws is not None and len(buckets):
                    z += m.ws[buckets].mean()
                out[i, j] = z
        return out
