"""Gradient-boosted trees: scikit-learn's ``HistGradientBoostingClassifier``
for training, a flattened copy of its trees for the router's per-prompt path.

Training is scikit-learn's histogram boosting on the binary log loss (trees
of at most ``depth`` levels, L2 on leaf values, ``min_leaf`` rows per leaf,
``max_bins`` quantile bins per feature, no built-in early stopping: the
caller picks the round count from ``staged_logits`` on held-out rows).

``FlatTrees`` copies the fitted trees into padded arrays (feature, threshold,
left, right, leaf value per node, one row per tree) and walks all trees at
once, ``depth`` vectorised steps for one prompt. Kept because the library's
own single-row ``decision_function`` costs more than the router's whole
1 ms p50 budget at 1,000 tokens (input validation and a thread pool per
call; see ``bench/classifier_latency.py --compare-library``); the flat copy
agrees with ``decision_function`` to float precision (tested).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ponder.router.classifiers.threads import one_thread


def fit_boosted(x: np.ndarray, y: np.ndarray, n_trees: int, depth: int, learning_rate: float, min_leaf: int,
                l2: float, max_bins: int, seed: int):
    """A fitted ``HistGradientBoostingClassifier`` on rows ``x`` (n, d), labels ``y`` in {0, 1}.

    ValueError on empty input, mismatched shapes or a single class.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(bool)
    if x.ndim != 2 or len(x) != len(y) or not len(y):
        raise ValueError(f"need rows x (n, d) and labels (n,), got {x.shape} and {y.shape}")
    if y.all() or not y.any():
        raise ValueError("need both classes to fit boosted trees")
    m = HistGradientBoostingClassifier(
        loss="log_loss", learning_rate=learning_rate, max_iter=n_trees, max_depth=depth, max_leaf_nodes=None,
        min_samples_leaf=min_leaf, l2_regularization=l2, max_bins=min(max_bins, 255), early_stopping=False,
        random_state=seed,
    )
    with one_thread():
        return m.fit(x, y)


def staged_logits(model, x: np.ndarray) -> np.ndarray:
    """Logit after each boosting round 1..n_iter_ on rows ``x``; shape (n, n_iter_)."""
    with one_thread():
        return np.column_stack(list(model.staged_decision_function(np.asarray(x, dtype=np.float64))))


def log_loss(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean log loss per column of ``logits`` (n,) or (n, k) against labels ``y`` (n,)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if z.ndim == 2:
        y = y[:, None]
    return np.mean(np.logaddexp(0.0, z) - y * z, axis=0)


@dataclasses.dataclass
class FlatTrees:
    """Trees as padded node arrays (n_trees, max_nodes); a leaf points to itself so extra steps stay put."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    base: float
    depth: int

    @classmethod
    def from_sklearn(cls, model, n_trees: int | None = None) -> "FlatTrees":
        """Copy the first ``n_trees`` rounds (all when None) of a fitted binary HistGradientBoostingClassifier.

        Rows with missing values are not supported (the features never produce NaN).
        """
        trees = [p[0].nodes for p in model._predictors[:n_trees]]
        width = max((len(t) for t in trees), default=1)
        t_n = len(trees)
        feature = np.zeros((t_n, width), dtype=np.int64)
        threshold = np.full((t_n, width), np.inf)
        left = np.tile(np.arange(width, dtype=np.int64), (t_n, 1))
        right = left.copy()
        value = np.zeros((t_n, width))
        depth = 0
        for i, nodes in enumerate(trees):
            k = len(nodes)
            inner = nodes["is_leaf"] == 0
            feature[i, :k] = np.where(inner, nodes["feature_idx"], 0)
            threshold[i, :k] = np.where(inner, nodes["num_threshold"], np.inf)
            left[i, :k] = np.where(inner, nodes["left"], np.arange(k))
            right[i, :k] = np.where(inner, nodes["right"], np.arange(k))
            value[i, :k] = np.where(inner, 0.0, nodes["value"])
            depth = max(depth, int(nodes["depth"].max()) if k else 0)
        return cls(feature, threshold, left, right, value, float(np.ravel(model._baseline_prediction)[0]), depth)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}feature": self.feature, f"{prefix}threshold": self.threshold, f"{prefix}left": self.left,
                f"{prefix}right": self.right, f"{prefix}value": self.value,
                f"{prefix}meta": np.array([self.base, self.depth])}

    @classmethod
    def from_arrays(cls, z, prefix: str) -> "FlatTrees":
        meta = z[f"{prefix}meta"]
        return cls(z[f"{prefix}feature"].astype(np.int64), z[f"{prefix}threshold"], z[f"{prefix}left"].astype(np.int64),
                   z[f"{prefix}right"].astype(np.int64), z[f"{prefix}value"], float(meta[0]), int(meta[1]))

    def score(self, x: np.ndarray) -> np.ndarray:
        """Logit per row of ``x`` (n, n_features); shape (n,)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        t_n = len(self.feature)
        if not t_n:
            return np.full(len(x), self.base)
        node = np.zeros((len(x), t_n), dtype=np.int64)
        cols = np.arange(t_n)
        rows = np.arange(len(x))[:, None]
        for _ in range(self.depth):
            # scikit-learn sends x <= threshold left.
            go_left = x[rows, self.feature[cols, node]] <= self.threshold[cols, node]
            node = np.where(go_left, self.left[cols, node], self.right[cols, node])
        return self.base + self.value[cols, node].sum(axis=1)

    def score_one(self, x: np.ndarray) -> float:
        """Logit of one row (n_features,): no (n, trees) temporaries."""
        t_n = len(self.feature)
        node = np.zeros(t_n, dtype=np.int64)
        cols = np.arange(t_n)
        for _ in range(self.depth):
            go_left = x[self.feature[cols, node]] <= self.threshold[cols, node]
            node = np.where(go_left, self.left[cols, node], self.right[cols, node])
        return self.base + float(self.value[cols, node].sum())
