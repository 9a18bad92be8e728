"""``mf``: matrix factorisation of prompt × model outcomes (RouteLLM's best-performing family).

Every target (a model column, a pool, or a gain head) has a ``rank``-sized
vector v_t; every prompt is projected into the same space from its sparse
tf-idf vector x (``vectors.HashedTfidf``) by one shared matrix W; beside the
bilinear term each target has a linear part on the prompt's standardised
structural features s (``features.STRUCTURAL_NAMES``) and a bias:

    logit P(t right | prompt) = v_t · (W x) + u_t · s + b_t

All targets are fitted jointly (the projection is shared, so models with few
outcomes borrow from the rest, and any number of pools can be ranked) by
minimising the mean log loss over the known (prompt, target) cells plus
½·l2·(|W|² + |V|² + |U|²) with scipy's L-BFGS and the analytic gradient,
from a small random start. Calibration is cross-fitted: models trained on the
other ``calibration_folds`` folds score each fold, a calibrator per target is
fitted on those scores, then the final model is trained on everything.
"""
from __future__ import annotations

import pathlib
import warnings
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import minimize
from scipy.special import expit

from ponder.router.classifiers.base import Classifier, register
from ponder.router.classifiers.calibration import Calibrator, expected_calibration_error
from ponder.router.classifiers.features import structural_matrix
from ponder.router.classifiers.threads import one_thread
from ponder.router.classifiers.vectors import HashedTfidf


class MFParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int = Field(16, ge=1, le=256, description="Dimension of the shared prompt/target space.")
    l2: float = Field(1e-4, ge=0, description="L2 penalty on W, the target vectors and the linear parts.")
    max_iter: int = Field(150, ge=1, le=5000, description="L-BFGS iterations per fit.")
    hash_bits: int = Field(16, ge=10, le=20, description="log2 of the hashed tf-idf columns (W has rank × 2^bits).")
    calibration: Literal["platt", "isotonic", "none"] = Field("platt", description="Probability calibration.")
    calibration_folds: int = Field(3, ge=2, le=20, description="Folds for cross-fitted calibration.")
    seed: int = Field(0, description="Seed for the start and the folds.")


class _Fit:
    """W (rank, D), V (T, rank), U (T, S), b (T,), with the structural standardisation mu, sd."""

    def __init__(self, w, v, u, b, mu, sd):
        self.w, self.v, self.u, self.b, self.mu, self.sd = w, v, u, b, mu, sd

    def logits(self, x: sp.csr_matrix, s: np.ndarray) -> np.ndarray:
        z = np.asarray(x @ self.w.T)
        return z @ self.v.T + ((s - self.mu) / self.sd) @ self.u.T + self.b


def fit_mf(x: sp.csr_matrix, s: np.ndarray, y: np.ndarray, rank: int, l2: float, max_iter: int, seed: int) -> _Fit:
    """Fit on sparse prompt rows ``x`` (n, D), dense ``s`` (n, S) and outcomes ``y`` (n, T) with NaN for unknown."""
    n, d = x.shape
    t = y.shape[1]
    mu, sd = s.mean(axis=0), s.std(axis=0)
    sd[sd < 1e-9] = 1.0
    sz = (s - mu) / sd
    known = ~np.isnan(y)
    yy = np.nan_to_num(y)
    count = max(int(known.sum()), 1)
    rate = np.array([yy[known[:, j], j].mean() if known[:, j].any() else 0.5 for j in range(t)])
    b0 = np.log(np.clip(rate, 1e-3, 1 - 1e-3) / (1 - np.clip(rate, 1e-3, 1 - 1e-3)))
    shapes = [(rank, d), (t, rank), (t, sz.shape[1]), (t,)]
    sizes = [int(np.prod(sh)) for sh in shapes]

    def unpack(theta):
        out, i = [], 0
        for sh, k in zip(shapes, sizes):
            out.append(theta[i:i + k].reshape(sh))
            i += k
        return out

    xt = x.T.tocsr()

    def loss(theta):
        w, v, u, b = unpack(theta)
        z = np.asarray(x @ w.T)  # (n, rank)
        f = z @ v.T + sz @ u.T + b
        val = np.sum((np.logaddexp(0.0, f) - yy * f)[known]) / count
        r = np.where(known, expit(f) - yy, 0.0) / count  # (n, t)
        gv = r.T @ z + l2 * v
        gw = np.asarray(xt @ (r @ v)).T + l2 * w  # (rank, d)
        gu = r.T @ sz + l2 * u
        gb = r.sum(axis=0)
        val += 0.5 * l2 * (np.sum(w * w) + np.sum(v * v) + np.sum(u * u))
        return val, np.concatenate([gw.ravel(), gv.ravel(), gu.ravel(), gb])

    rng = np.random.default_rng(seed)
    theta0 = np.concatenate([rng.normal(0, 0.1, sizes[0]), rng.normal(0, 0.1, sizes[1]), np.zeros(sizes[2]), b0])
    with warnings.catch_warnings(), one_thread():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    w, v, u, b = unpack(res.x)
    return _Fit(w.astype(np.float32), v, u, b, mu, sd)


@register
class MatrixFactorisation(Classifier):
    name = "mf"
    Params = MFParams

    def __init__(self, params: MFParams):
        super().__init__(params)
        self.tfidf: HashedTfidf | None = None
        self.model: _Fit | None = None

    def fit(self, texts: list[str], labels: dict[str, np.ndarray]) -> "MatrixFactorisation":
        if not labels:
            raise ValueError("no targets to fit")
        p = self.params
        n = len(texts)
        self.tfidf = HashedTfidf(p.hash_bits).fit(texts)
        x = self.tfidf.transform(texts)
        s = structural_matrix(texts)
        self.targets = list(labels)
        y = np.column_stack([np.asarray(labels[t], dtype=np.float64) for t in self.targets])
        k = min(p.calibration_folds, n)
        fold = np.random.default_rng(p.seed).permutation(n) % k
        oof = np.zeros_like(y)
        for j in range(k):
            tr, te = fold != j, fold == j
            oof[te] = fit_mf(x[tr], s[tr], y[tr], p.rank, p.l2, p.max_iter, p.seed).logits(x[te], s[te])
        self.model = fit_mf(x, s, y, p.rank, p.l2, p.max_iter, p.seed)
        self.calibrators = []
        self.report = {"n": n, "targets": {}}
        for j, t in enumerate(self.targets):
            m = ~np.isnan(y[:, j])
            yt = y[m, j] > 0.5
            cal = Calibrator.fit(p.calibration, oof[m, j], yt)
            self.calibrators.append(cal)
            self.report["targets"][t] = {
                "n": int(m.sum()), "base_rate": float(yt.mean()), "calibration": p.calibration,
                "ece_uncalibrated": expected_calibration_error(expit(oof[m, j]), yt),
                "ece_calibrated": expected_calibration_error(cal(oof[m, j]), yt),
            }
        return self

    def raw_scores(self, texts: list[str]) -> np.ndarray:
        if self.model is None or not texts:
            return np.zeros((len(texts), len(self.targets)))
        return self.model.logits(self.tfidf.transform(texts), structural_matrix(texts))

    def save_arrays(self, directory: pathlib.Path) -> None:
        m = self.model
        np.savez(directory / "mf.npz", w=m.w, v=m.v, u=m.u, b=m.b, mu=m.mu, sd=m.sd, idf=self.tfidf.idf)

    def load_arrays(self, directory: pathlib.Path) -> None:
        with np.load(directory / "mf.npz") as z:
            self.model = _Fit(z["w"], z["v"], z["u"], z["b"], z["mu"], z["sd"])
            idf = z["idf"]
        if idf.shape != (1 << self.params.hash_bits,) or self.model.v.shape[0] != len(self.targets):
            raise ValueError(f"mf arrays (idf {idf.shape}, {self.model.v.shape[0]} target vectors) do not match "
                             f"hash_bits {self.params.hash_bits} and {len(self.targets)} targets")
        self.tfidf = HashedTfidf(self.params.hash_bits, idf=idf)
