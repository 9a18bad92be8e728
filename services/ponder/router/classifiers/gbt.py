"""Gradient-boosted decision trees for the binary log loss, numpy only.

Training is the histogram method (as in LightGBM and XGBoost's ``hist``):
each feature is cut at up to ``max_bins - 1`` quantiles of its training
values and every row keeps only its bin index. Each boosting round fits one
tree to the loss's gradient g = p - y and hessian h = p(1 - p), level by
level to a fixed depth. At each level one ``bincount`` per statistic builds
the (node, feature, bin) histograms of all nodes at once; a node takes the
split with the largest second-order gain

    G_L²/(H_L + λ) + G_R²/(H_R + λ) - G²/(H + λ)

among those leaving at least ``min_leaf`` rows on each side. A node without
such a split keeps all its rows on the left (threshold +inf), so every tree
is a complete binary tree of the given depth. Leaf values are the Newton step
-G/(H + λ) scaled by the learning rate; the model's score is the initial
log-odds plus the sum of the trees' leaves (a logit, unbounded).

Inference walks all trees at once: ``depth`` vectorised steps, each a gather
of the node's feature and threshold per tree and a comparison, then one
gather of the leaf values. A tree's nodes are numbered heap-style (children
of i are 2i+1 and 2i+2, right when x > threshold).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ponder.router.classifiers.optim import sigmoid


@dataclasses.dataclass
class Trees:
    """A fitted ensemble: ``feature``/``threshold`` (n_trees, 2^depth - 1), ``leaf`` (n_trees, 2^depth)."""

    feature: np.ndarray
    threshold: np.ndarray
    leaf: np.ndarray
    base: float

    @property
    def depth(self) -> int:
        return int(np.log2(self.leaf.shape[1])) if self.leaf.size else 0

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Leaf index per (row, tree) for rows ``x`` of shape (n, n_features)."""
        n, t = len(x), len(self.feature)
        node = np.zeros((n, t), dtype=np.int64)
        cols = np.arange(t)
        for _ in range(self.depth):
            f = self.feature[cols, node]
            right = x[np.arange(n)[:, None], f] > self.threshold[cols, node]
            node = 2 * node + 1 + right
        return node - (self.leaf.shape[1] - 1)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Logit per row; shape (n,)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if not len(self.feature):
            return np.full(len(x), self.base)
        return self.base + self.leaf[np.arange(len(self.feature)), self.leaves(x)].sum(axis=1)

    def staged_scores(self, x: np.ndarray) -> np.ndarray:
        """Logit after each number of trees 1..n_trees; shape (n, n_trees)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        return self.base + np.cumsum(self.leaf[np.arange(len(self.feature)), self.leaves(x)], axis=1)

    def truncated(self, n_trees: int) -> "Trees":
        return Trees(self.feature[:n_trees], self.threshold[:n_trees], self.leaf[:n_trees], self.base)

    def score_one(self, x: np.ndarray) -> float:
        """Logit of one row (n_features,): the router's per-prompt path, no (n, trees) temporaries."""
        node = np.zeros(len(self.feature), dtype=np.int64)
        cols = np.arange(len(self.feature))
        for _ in range(self.depth):
            node = 2 * node + 1 + (x[self.feature[cols, node]] > self.threshold[cols, node])
        return self.base + float(self.leaf[cols, node - (self.leaf.shape[1] - 1)].sum())


def quantile_edges(x: np.ndarray, max_bins: int) -> list[np.ndarray]:
    """Per feature, the distinct cut values (at most ``max_bins - 1``) between its quantile bins."""
    qs = np.linspace(0.0, 1.0, max_bins + 1)[1:-1]
    edges = []
    for col in x.T:
        e = np.unique(np.quantile(col, qs, method="lower"))
        # A cut at the maximum would leave an empty right bin.
        edges.append(e[e < col.max()] if len(col) else e)
    return edges


def bin_rows(x: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Bin index per (row, feature): the number of cut values below the value, so bin b ⇔ x <= edges[b]."""
    return np.column_stack([np.searchsorted(e, col, side="left") for e, col in zip(edges, x.T)]).astype(np.int64)


def fit_trees(x: np.ndarray, y: np.ndarray, n_trees: int = 200, depth: int = 3, learning_rate: float = 0.1,
              min_leaf: int = 20, l2: float = 1.0, max_bins: int = 64, subsample: float = 1.0,
              seed: int = 0) -> Trees:
    """Boost ``n_trees`` trees of ``depth`` on rows ``x`` (n, n_features) with labels ``y`` in {0, 1}.

    ``subsample`` < 1 draws that share of rows (without replacement) per tree.
    Raises ValueError on empty input or mismatched shapes.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y) or not len(y):
        raise ValueError(f"need rows x (n, d) and labels (n,), got {x.shape} and {y.shape}")
    n, d = x.shape
    edges = quantile_edges(x, max_bins)
    xb = bin_rows(x, edges)
    nb = max_bins
    key_base = xb + np.arange(d) * nb  # (n, d): feature-major bin key
    p0 = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    base = float(np.log(p0 / (1 - p0)))
    f_raw = np.full(n, base)
    n_inner, n_leaf = (1 << depth) - 1, 1 << depth
    feature = np.zeros((n_trees, n_inner), dtype=np.int32)
    threshold = np.full((n_trees, n_inner), np.inf)
    leaf = np.zeros((n_trees, n_leaf))
    rng = np.random.default_rng(seed)
    for t in range(n_trees):
        p = sigmoid(f_raw)
        g, h = p - y, np.maximum(p * (1 - p), 1e-12)
        rows = np.arange(n) if subsample >= 1.0 else np.sort(rng.choice(n, max(1, int(subsample * n)), replace=False))
        node = np.zeros(n, dtype=np.int64)  # node within the current level, for every row
        for level in range(depth):
            width = 1 << level
            keys = (node[rows, None] * (d * nb) + key_base[rows]).ravel()
            size = width * d * nb
            gh = np.bincount(keys, weights=np.repeat(g[rows], d), minlength=size).reshape(width, d, nb)
            hh = np.bincount(keys, weights=np.repeat(h[rows], d), minlength=size).reshape(width, d, nb)
            ch = np.bincount(keys, minlength=size).reshape(width, d, nb)
            gl, hl, cl = gh.cumsum(axis=2), hh.cumsum(axis=2), ch.cumsum(axis=2)
            gt, ht, ct = gl[:, :, -1:], hl[:, :, -1:], cl[:, :, -1:]
            gain = gl ** 2 / (hl + l2) + (gt - gl) ** 2 / (ht - hl + l2) - gt ** 2 / (ht + l2)
            gain[(cl < min_leaf) | (ct - cl < min_leaf)] = -np.inf
            flat = gain.reshape(width, -1)
            best = flat.argmax(axis=1)
            ok = flat[np.arange(width), best] > 1e-12
            bf, bb = best // nb, best % nb
            heap = width - 1 + np.arange(width)
            feature[t, heap] = np.where(ok, bf, 0)
            thr = np.array([edges[f][b] if k else np.inf for f, b, k in zip(bf, bb, ok)])
            threshold[t, heap] = thr
            go_right = ok[node] & (xb[np.arange(n), bf[node]] > bb[node])
            node = 2 * node + go_right
        gs = np.bincount(node[rows], weights=g[rows], minlength=n_leaf)
        hs = np.bincount(node[rows], weights=h[rows], minlength=n_leaf)
        leaf[t] = -learning_rate * gs / (hs + l2)
        f_raw += leaf[t][node]
    return Trees(feature, threshold, leaf, base)


def log_loss(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean log loss per column of ``logits`` (n,) or (n, k) against labels ``y`` (n,)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if z.ndim == 2:
        y = y[:, None]
    return np.mean(np.logaddexp(0.0, z) - y * z, axis=0)
