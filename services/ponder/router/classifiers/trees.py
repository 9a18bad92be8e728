"""``hashed-gbt``: gradient-boosted trees on prompt features, numpy only.

Per target, one boosted-tree model (see ``gbt``) on the extended structural
features (``features.EXTENDED_NAMES``) plus, unless ``use_ngrams`` is off,
one stacked n-gram feature: the mean naive-Bayes log-count ratio of the
prompt's hashed character n-grams (as in ``hashed-linear``), cross-fitted in
training so the trees do not trust an overfit score.

The number of trees is chosen by inner cross-validation: the same
``calibration_folds`` folds that cross-fit the calibrator score each fold
with models trained on the others after every boosting round, and the round
with the lowest out-of-fold log loss (at most ``n_trees``) is kept. The
calibrator is fitted on those out-of-fold scores (ECE before and after lands
in ``report``), then the final model is trained on all rows.

Inference for one prompt: the feature pass, a gather-and-mean over its
n-gram buckets and ``depth`` vectorised steps over the trees.
"""
from __future__ import annotations

import pathlib
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ponder.router.classifiers.base import Classifier, register
from ponder.router.classifiers.calibration import Calibrator
from ponder.router.classifiers.features import SparseRows, extended, extended_matrix, ngram_buckets, sparse_ngrams
from ponder.router.classifiers.gbt import Trees, fit_trees, log_loss
from ponder.router.classifiers.linear import nb_ratios
from ponder.router.classifiers.optim import sigmoid
from ponder.router.training.metrics import expected_calibration_error


class TreeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_trees: int = Field(200, ge=1, le=5000, description="Most boosting rounds; inner CV picks how many to keep.")
    select_trees: bool = Field(True, description="Pick the number of trees by out-of-fold log loss; False keeps n_trees.")
    depth: int = Field(3, ge=1, le=8, description="Depth of every tree (2^depth leaves).")
    learning_rate: float = Field(0.1, gt=0, le=1, description="Shrinkage applied to each tree's leaves.")
    min_leaf: int = Field(20, ge=1, description="Fewest training rows on each side of a split.")
    l2: float = Field(1.0, ge=0, description="L2 penalty λ on leaf values (Newton step -G/(H+λ)).")
    max_bins: int = Field(64, ge=2, le=1024, description="Histogram bins per feature.")
    subsample: float = Field(1.0, gt=0, le=1, description="Share of rows drawn for each tree.")
    calibration: Literal["platt", "isotonic", "none"] = Field("platt", description="Probability calibration.")
    calibration_folds: int = Field(3, ge=2, le=20, description="Folds for cross-fitted calibration and tree count.")
    seed: int = Field(0, description="Seed for folds and subsampling.")


class HashedGBTParams(TreeParams):
    use_ngrams: bool = Field(True, description="Add the stacked hashed n-gram feature.")
    hash_bits: int = Field(18, ge=8, le=24, description="log2 of the number of n-gram buckets.")
    ngram_orders: tuple[int, ...] = Field((4,), min_length=1, description="Character n-gram lengths.")
    nb_alpha: float = Field(1.0, gt=0, description="Additive smoothing of the n-gram log-count ratios.")
    nb_folds: int = Field(3, ge=2, le=20, description="Folds for cross-fitting the n-gram feature in training.")


class CalibratedTrees(Classifier):
    """Shared training of one calibrated tree model per target; subclasses give the dense features."""

    Params = TreeParams

    def __init__(self, params: TreeParams):
        super().__init__(params)
        self.models: list[Trees] = []

    def dense(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _train_design(self, x: np.ndarray, texts_idx: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, object]:
        """Training matrix for rows ``texts_idx`` and the state needed to score new rows (none here)."""
        return x, None

    def _test_design(self, x: np.ndarray, texts_idx: np.ndarray, state: object) -> np.ndarray:
        return x

    def _fit_trees(self, x: np.ndarray, y: np.ndarray, n_trees: int) -> Trees:
        p = self.params
        return fit_trees(x, y, n_trees, p.depth, p.learning_rate, p.min_leaf, p.l2, p.max_bins, p.subsample, p.seed)

    def fit(self, texts: list[str], labels: dict[str, np.ndarray]) -> "CalibratedTrees":
        if not labels:
            raise ValueError("no targets to fit")
        p = self.params
        x_all = self.dense(texts)
        n = len(texts)
        k = min(p.calibration_folds, n)
        fold = np.random.default_rng(p.seed).permutation(n) % k
        self.targets, self.models, self.calibrators, self._states = [], [], [], []
        self.report = {"n": n, "targets": {}}
        for target, y in labels.items():
            y = np.asarray(y, dtype=np.float64)
            # NaN marks rows without an outcome for this target (e.g. another pool served them).
            known = np.flatnonzero(~np.isnan(y))
            xk, yk, fk = x_all[known], y[known] > 0.5, fold[known]
            staged = np.zeros((len(known), p.n_trees))
            for j in range(k):
                tr, te = np.flatnonzero(fk != j), np.flatnonzero(fk == j)
                if not (len(te) and len(tr)):
                    continue
                xtr, state = self._train_design(xk[tr], known[tr], yk[tr])
                trees = self._fit_trees(xtr, yk[tr], p.n_trees)
                staged[te] = trees.staged_scores(self._test_design(xk[te], known[te], state))
            losses = log_loss(staged, yk)
            n_keep = int(np.argmin(losses)) + 1 if p.select_trees else p.n_trees
            oof = staged[:, n_keep - 1]
            cal = Calibrator.fit(p.calibration, oof, yk)
            self.report["targets"][target] = {
                "n": int(len(known)),
                "base_rate": float(yk.mean()),
                "n_trees": n_keep,
                "oof_log_loss": float(losses[n_keep - 1]),
                "ece_uncalibrated": expected_calibration_error(sigmoid(oof), yk),
                "ece_calibrated": expected_calibration_error(cal(oof), yk),
                "calibration": p.calibration,
            }
            xfull, state = self._train_design(xk, known, yk)
            self.targets.append(target)
            self.calibrators.append(cal)
            self.models.append(self._fit_trees(xfull, yk, n_keep))
            self._states.append(state)
        return self

    def raw_scores(self, texts: list[str]) -> np.ndarray:
        x = self.dense(texts)
        return np.column_stack([m.score(x) for m in self.models]) if self.models else np.zeros((len(texts), 0))

    def save_arrays(self, directory: pathlib.Path) -> None:
        arrays = {}
        for j, m in enumerate(self.models):
            arrays.update({f"feature{j}": m.feature, f"threshold{j}": m.threshold, f"leaf{j}": m.leaf,
                           f"base{j}": np.array([m.base])})
        np.savez(directory / "trees.npz", **arrays)

    def load_arrays(self, directory: pathlib.Path) -> None:
        with np.load(directory / "trees.npz") as z:
            self.models = [Trees(z[f"feature{j}"].astype(np.int64), z[f"threshold{j}"], z[f"leaf{j}"],
                                 float(z[f"base{j}"][0])) for j in range(len(self.targets))]


@register
class HashedGBT(CalibratedTrees):
    name = "hashed-gbt"
    Params = HashedGBTParams

    def __init__(self, params: HashedGBTParams):
        super().__init__(params)
        self.ratios: list[np.ndarray] = []
        self._sparse: SparseRows | None = None

    def dense(self, texts: list[str]) -> np.ndarray:
        return extended_matrix(texts)

    def fit(self, texts: list[str], labels: dict[str, np.ndarray]) -> "HashedGBT":
        p = self.params
        self._sparse = sparse_ngrams(texts, p.ngram_orders, p.hash_bits) if p.use_ngrams else None
        try:
            super().fit(texts, labels)
        finally:
            self._sparse = None
        self.ratios = [s for s in self._states if s is not None]
        del self._states
        return self

    def _train_design(self, x: np.ndarray, rows: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, object]:
        if self._sparse is None:
            return x, None
        p = self.params
        sp = self._sparse.take(rows)
        n = len(rows)
        fold = np.random.default_rng(p.seed + 1).permutation(n) % min(p.nb_folds, n)
        stacked = np.zeros(n)
        for j in range(fold.max() + 1):
            tr, te = np.flatnonzero(fold != j), np.flatnonzero(fold == j)
            if len(tr) and len(te):
                stacked[te] = sp.take(te).dot(nb_ratios(sp.take(tr), y[tr], p.nb_alpha))
        return np.c_[x, stacked], nb_ratios(sp, y, p.nb_alpha)

    def _test_design(self, x: np.ndarray, rows: np.ndarray, state: object) -> np.ndarray:
        if self._sparse is None:
            return x
        return np.c_[x, self._sparse.take(rows).dot(state)]

    def raw_scores(self, texts: list[str]) -> np.ndarray:
        # Per-prompt path without building sparse rows: the router scores one prompt at a time.
        p = self.params
        out = np.empty((len(texts), len(self.models)))
        for i, t in enumerate(texts):
            x = extended(t)
            if p.use_ngrams:
                buckets = ngram_buckets(t, p.ngram_orders, p.hash_bits)
                x_j = [np.r_[x, r[buckets].mean() if len(buckets) else 0.0] for r in self.ratios]
            else:
                x_j = [x] * len(self.models)
            for j, m in enumerate(self.models):
                out[i, j] = m.score_one(x_j[j])
        return out

    def save_arrays(self, directory: pathlib.Path) -> None:
        super().save_arrays(directory)
        if self.ratios:
            np.savez(directory / "ngrams.npz", **{f"ratios{j}": r.astype(np.float32) for j, r in enumerate(self.ratios)})

    def load_arrays(self, directory: pathlib.Path) -> None:
        super().load_arrays(directory)
        self.ratios = []
        if self.params.use_ngrams:
            with np.load(directory / "ngrams.npz") as z:
                self.ratios = [z[f"ratios{j}"].astype(np.float64) for j in range(len(self.targets))]
