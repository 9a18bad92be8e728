"""``hashed-gbt``: gradient-boosted trees on prompt features.

Per target, one boosted-tree model (scikit-learn's histogram boosting, see ``boosting``) on the extended structural
features (``features.EXTENDED_NAMES``), stacked (unless ``use_ngrams`` is
off) with the hashed character n-gram score of ``hashed-linear``: the mean
naive-Bayes log-count ratio of the prompt's n-gram buckets.

Everything data-dependent beyond the trees themselves is chosen by inner
cross-validation on the ``calibration_folds`` folds of the training rows:
models trained on the other folds score each fold after every boosting
round, and the round count with the lowest out-of-fold log loss (at most
``n_trees``) is kept; the stacking weights z = a·tree_logit + c·ngram + b
are a logistic regression on the out-of-fold tree logits and n-gram scores;
the calibrator is fitted on the out-of-fold stacked scores (ECE before and
after lands in ``report``). The final trees and n-gram ratios are then
trained on all rows; c is folded into the stored n-gram weights.

Inference for one prompt: the feature pass, a gather-and-mean over its
n-gram buckets and ``depth`` vectorised steps over the flattened trees
(``boosting.FlatTrees``, which says why the library's own predict is not used).
"""
from __future__ import annotations

import pathlib
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import expit as sigmoid

from ponder.router.classifiers.base import Classifier, register
from ponder.router.classifiers.boosting import FlatTrees, fit_boosted, log_loss, staged_logits
from ponder.router.classifiers.calibration import Calibrator, expected_calibration_error
from ponder.router.classifiers.features import SparseRows, extended, extended_matrix, ngram_buckets, sparse_ngrams
from ponder.router.classifiers.linear import Features, fit_logistic, nb_ratios


class TreeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_trees: int = Field(200, ge=1, le=5000, description="Most boosting rounds; inner CV picks how many to keep.")
    select_trees: bool = Field(True, description="Pick the number of trees by out-of-fold log loss; False keeps n_trees.")
    depth: int = Field(3, ge=1, le=8, description="Depth of every tree (2^depth leaves).")
    learning_rate: float = Field(0.1, gt=0, le=1, description="Shrinkage applied to each tree's leaves.")
    min_leaf: int = Field(20, ge=1, description="Fewest training rows on each side of a split.")
    l2: float = Field(1.0, ge=0, description="L2 penalty λ on leaf values (Newton step -G/(H+λ)).")
    max_bins: int = Field(64, ge=2, le=255, description="Histogram bins per feature.")
    calibration: Literal["platt", "isotonic", "none"] = Field("platt", description="Probability calibration.")
    calibration_folds: int = Field(3, ge=2, le=20, description="Folds for cross-fitted calibration and tree count.")
    seed: int = Field(0, description="Seed for folds and subsampling.")


class HashedGBTParams(TreeParams):
    use_ngrams: bool = Field(True, description="Stack the hashed n-gram score with the trees' logit.")
    hash_bits: int = Field(18, ge=8, le=24, description="log2 of the number of n-gram buckets.")
    ngram_orders: tuple[int, ...] = Field((4,), min_length=1, description="Character n-gram lengths.")
    nb_alpha: float = Field(1.0, gt=0, description="Additive smoothing of the n-gram log-count ratios.")
    stack_l2: float = Field(1e-3, ge=0, description="L2 penalty on the stacking weights (standardised inputs).")


class CalibratedTrees(Classifier):
    """One calibrated tree model per target, optionally stacked with a hashed n-gram score.

    Subclasses give the dense features (``dense``) and, for the n-gram part,
    the hashed n-gram rows (``ngram_rows``; None for none).
    """

    Params = TreeParams

    # 2: scikit-learn's trees (flattened), replacing the hand-written complete trees of version 1.
    kind_version = 2

    def __init__(self, params: TreeParams):
        super().__init__(params)
        self.models: list[FlatTrees] = []
        # Per target: z = stack[0]·tree_logit + stack[1] + mean(ngram_weights[buckets]).
        self.stacks: list[np.ndarray] = []
        self.ngram_weights: list[np.ndarray] = []

    def dense(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def ngram_rows(self, texts: list[str]) -> SparseRows | None:
        return None

    def _fit_trees(self, x: np.ndarray, y: np.ndarray, n_trees: int):
        p = self.params
        return fit_boosted(x, y, n_trees, p.depth, p.learning_rate, p.min_leaf, p.l2, p.max_bins, p.seed)

    def fit(self, texts: list[str], labels: dict[str, np.ndarray]) -> "CalibratedTrees":
        if not labels:
            raise ValueError("no targets to fit")
        p = self.params
        x_all = self.dense(texts)
        sp_all = self.ngram_rows(texts)
        n = len(texts)
        k = min(p.calibration_folds, n)
        fold = np.random.default_rng(p.seed).permutation(n) % k
        self.targets, self.models, self.calibrators, self.stacks, self.ngram_weights = [], [], [], [], []
        self.report = {"n": n, "targets": {}}
        for target, y in labels.items():
            y = np.asarray(y, dtype=np.float64)
            # NaN marks rows without an outcome for this target (e.g. another pool served them).
            known = np.flatnonzero(~np.isnan(y))
            xk, yk, fk = x_all[known], y[known] > 0.5, fold[known]
            sp = sp_all.take(known) if sp_all is not None else None
            staged = np.zeros((len(known), p.n_trees))
            ngram_oof = np.zeros(len(known))
            for j in range(k):
                tr, te = np.flatnonzero(fk != j), np.flatnonzero(fk == j)
                if not (len(te) and len(tr)):
                    continue
                if yk[tr].all() or not yk[tr].any():  # a fold with one class: its prior, every round
                    r = float(np.clip(yk[tr].mean(), 1e-3, 1 - 1e-3))
                    staged[te] = np.log(r / (1 - r))
                    continue
                s = staged_logits(self._fit_trees(xk[tr], yk[tr], p.n_trees), xk[te])
                staged[te, :s.shape[1]] = s
                staged[te, s.shape[1]:] = s[:, -1:]
                if sp is not None:
                    ngram_oof[te] = sp.take(te).dot(nb_ratios(sp.take(tr), yk[tr], p.nb_alpha))
            losses = log_loss(staged, yk)
            n_keep = int(np.argmin(losses)) + 1 if p.select_trees else p.n_trees
            tree_oof = staged[:, n_keep - 1]
            if sp is not None:
                # Stacking weights from out-of-fold scores only, so neither part is trusted for its fit.
                m = fit_logistic(Features(np.c_[tree_oof, ngram_oof], None), yk, p.stack_l2, 200)
                w = m.wd / m.sd
                stack = np.array([w[0], m.b - w.dot(m.mu)])
                oof = stack[0] * tree_oof + w[1] * ngram_oof + stack[1]
                self.ngram_weights.append(w[1] * nb_ratios(sp, yk, p.nb_alpha))
            else:
                stack, oof = np.array([1.0, 0.0]), tree_oof
            cal = Calibrator.fit(p.calibration, oof, yk)
            self.report["targets"][target] = {
                "n": int(len(known)),
                "base_rate": float(yk.mean()),
                "n_trees": n_keep,
                "oof_log_loss_trees": float(losses[n_keep - 1]),
                "stack": [float(v) for v in stack] + ([float(w[1])] if sp is not None else []),
                "ece_uncalibrated": expected_calibration_error(sigmoid(oof), yk),
                "ece_calibrated": expected_calibration_error(cal(oof), yk),
                "calibration": p.calibration,
            }
            self.targets.append(target)
            self.calibrators.append(cal)
            self.models.append(FlatTrees.from_sklearn(self._fit_trees(xk, yk, n_keep)))
            self.stacks.append(stack)
        return self

    def raw_scores(self, texts: list[str]) -> np.ndarray:
        if not self.models:
            return np.zeros((len(texts), 0))
        x = self.dense(texts)
        sp = self.ngram_rows(texts) if self.ngram_weights else None
        cols = []
        for j, m in enumerate(self.models):
            z = self.stacks[j][0] * m.score(x) + self.stacks[j][1]
            cols.append(z + sp.dot(self.ngram_weights[j]) if sp is not None else z)
        return np.column_stack(cols)

    def save_arrays(self, directory: pathlib.Path) -> None:
        arrays = {}
        for j, m in enumerate(self.models):
            arrays.update(m.to_arrays(f"t{j}_"))
            arrays[f"stack{j}"] = self.stacks[j]
            if self.ngram_weights:
                arrays[f"ngram{j}"] = self.ngram_weights[j].astype(np.float32)
        np.savez(directory / "trees.npz", **arrays)

    def load_arrays(self, directory: pathlib.Path) -> None:
        with np.load(directory / "trees.npz") as z:
            r = range(len(self.targets))
            self.models = [FlatTrees.from_arrays(z, f"t{j}_") for j in r]
            self.stacks = [z[f"stack{j}"] for j in r]
            self.ngram_weights = [z[f"ngram{j}"].astype(np.float64) for j in r if f"ngram{j}" in z]
        if self.ngram_weights and len(self.ngram_weights) != len(self.models):
            raise ValueError(f"{len(self.models)} tree models but {len(self.ngram_weights)} n-gram weight vectors")


@register
class HashedGBT(CalibratedTrees):
    name = "hashed-gbt"
    Params = HashedGBTParams

    def dense(self, texts: list[str]) -> np.ndarray:
        return extended_matrix(texts)

    def ngram_rows(self, texts: list[str]) -> SparseRows | None:
        p = self.params
        return sparse_ngrams(texts, p.ngram_orders, p.hash_bits) if p.use_ngrams else None

    def raw_scores(self, texts: list[str]) -> np.ndarray:
        # Per-prompt path without building sparse rows: the router scores one prompt at a time.
        p = self.params
        out = np.empty((len(texts), len(self.models)))
        for i, t in enumerate(texts):
            x = extended(t)
            buckets = ngram_buckets(t, p.ngram_orders, p.hash_bits) if self.ngram_weights else None
            for j, m in enumerate(self.models):
                z = self.stacks[j][0] * m.score_one(x) + self.stacks[j][1]
                if buckets is not None and len(buckets):
                    z += self.ngram_weights[j][buckets].mean()
                out[i, j] = z
        return out
