"""``sw-neighbours``: similarity-weighted neighbours over prompt vectors (RouteLLM's SW ranking idea).

A prompt's score for a target is the smoothed, similarity-weighted share of
its ``k`` most similar training prompts that target got right:

    p = (Σ_i w_i·y_i + α·base) / (Σ_i w_i + α),   w_i = exp((sim_i - 1) / τ)

over the neighbours i with a known outcome for the target, sim the cosine
similarity of the prompts' vectors (``vectors``: hashed tf-idf, or MiniLM
with the ``embed`` extra), ``base`` the target's training rate and α the
prior's weight in neighbours. The raw score is logit(p). Because a training
prompt's neighbours can exclude itself, the out-of-fold scores for the
calibration come from one leave-one-out pass, no refits; the calibrator
(Platt or isotonic) is fitted on them.

A gain head (``base.gain_target``) is a target like any other, so the
neighbours vote directly on "strong right, weak wrong".

Learned state: the training vectors (sparse), the outcome matrix (NaN for
unknown) and the idf. Scoring one prompt: one sparse product with the
training vectors and a partial sort.
"""
from __future__ import annotations

import pathlib
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import expit, logit

from ponder.router.classifiers.base import Classifier, register
from ponder.router.classifiers.calibration import Calibrator, expected_calibration_error
from ponder.router.classifiers.vectors import HashedTfidf, minilm_vectors

_CHUNK = 512


class NeighboursParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: int = Field(50, ge=1, le=5000, description="Neighbours consulted per prompt.")
    temperature: float = Field(0.1, gt=0, le=10, description="τ of the similarity weight exp((sim - 1)/τ).")
    prior_weight: float = Field(2.0, ge=0, description="α: weight of the target's base rate, in neighbours.")
    vectors: Literal["hashed-tfidf", "minilm"] = Field(
        "hashed-tfidf", description="Prompt vectors: hashed word n-gram tf-idf (no torch) or MiniLM (embed extra).")
    hash_bits: int = Field(18, ge=10, le=22, description="log2 of the hashed tf-idf columns.")
    calibration: Literal["platt", "isotonic", "none"] = Field("platt", description="Probability calibration.")


@register
class Neighbours(Classifier):
    name = "sw-neighbours"
    Params = NeighboursParams

    def __init__(self, params: NeighboursParams):
        super().__init__(params)
        self.tfidf: HashedTfidf | None = None
        self.train_vectors = sp.csr_matrix((0, 0), dtype=np.float32)
        self.outcomes = np.zeros((0, 0))
        self.base = np.zeros(0)

    def vectors(self, texts: list[str]) -> sp.csr_matrix:
        if self.params.vectors == "minilm":
            return minilm_vectors(texts)
        if self.tfidf is None:
            self.tfidf = HashedTfidf(self.params.hash_bits)
        return self.tfidf.transform(texts)

    def _scores(self, q: sp.csr_matrix, exclude_self: bool = False) -> np.ndarray:
        """Smoothed neighbour rates (n, n_targets) for query rows ``q``; with ``exclude_self`` row i skips training row i."""
        p = self.params
        n_train = self.train_vectors.shape[0]
        out = np.empty((q.shape[0], self.outcomes.shape[1]))
        known = ~np.isnan(self.outcomes)
        y = np.nan_to_num(self.outcomes)
        k = min(p.k, n_train - (1 if exclude_self else 0))
        for start in range(0, q.shape[0], _CHUNK):
            sim = (q[start:start + _CHUNK] @ self.train_vectors.T).toarray()
            if exclude_self:
                rows = np.arange(sim.shape[0])
                sim[rows, start + rows] = -np.inf
            if k < n_train:
                top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            else:
                top = np.tile(np.arange(n_train), (sim.shape[0], 1))
            s = np.take_along_axis(sim, top, axis=1)
            w = np.where(np.isfinite(s), np.exp((s - 1.0) / p.temperature), 0.0)  # (m, k)
            kn, yy = known[top], y[top]  # (m, k, targets)
            num = np.einsum("mk,mkt->mt", w, yy * kn) + p.prior_weight * self.base
            den = np.einsum("mk,mkt->mt", w, kn.astype(np.float64)) + p.prior_weight
            out[start:start + _CHUNK] = num / np.maximum(den, 1e-12)
        return out

    def fit(self, texts: list[str], labels: dict[str, np.ndarray]) -> "Neighbours":
        if not labels:
            raise ValueError("no targets to fit")
        if len(texts) < 2:
            raise ValueError(f"need at least 2 prompts, got {len(texts)}")
        if self.params.vectors == "hashed-tfidf":
            self.tfidf = HashedTfidf(self.params.hash_bits).fit(texts)
        self.train_vectors = self.vectors(texts)
        self.targets = list(labels)
        self.outcomes = np.column_stack([np.asarray(labels[t], dtype=np.float64) for t in self.targets])
        self.base = np.array([np.nanmean(c) if np.any(~np.isnan(c)) else 0.5 for c in self.outcomes.T])
        loo = logit(np.clip(self._scores(self.train_vectors, exclude_self=True), 1e-4, 1 - 1e-4))
        self.calibrators = []
        self.report = {"n": len(texts), "targets": {}}
        for j, t in enumerate(self.targets):
            m = ~np.isnan(self.outcomes[:, j])
            y = self.outcomes[m, j] > 0.5
            cal = Calibrator.fit(self.params.calibration, loo[m, j], y)
            self.calibrators.append(cal)
            self.report["targets"][t] = {
                "n": int(m.sum()), "base_rate": float(y.mean()), "calibration": self.params.calibration,
                "ece_uncalibrated": expected_calibration_error(expit(loo[m, j]), y),
                "ece_calibrated": expected_calibration_error(cal(loo[m, j]), y),
            }
        return self

    def raw_scores(self, texts: list[str]) -> np.ndarray:
        if not len(self.targets):
            return np.zeros((len(texts), 0))
        if not texts:
            return np.zeros((0, len(self.targets)))
        return logit(np.clip(self._scores(self.vectors(texts)), 1e-4, 1 - 1e-4))

    def save_arrays(self, directory: pathlib.Path) -> None:
        v = self.train_vectors.tocsr()
        np.savez_compressed(directory / "neighbours.npz", data=v.data, indices=v.indices, indptr=v.indptr,
                            shape=np.array(v.shape), outcomes=self.outcomes, base=self.base,
                            idf=self.tfidf.idf if self.tfidf is not None else np.zeros(0, dtype=np.float32))

    def load_arrays(self, directory: pathlib.Path) -> None:
        with np.load(directory / "neighbours.npz") as z:
            self.train_vectors = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            self.outcomes, self.base = z["outcomes"], z["base"]
            idf = z["idf"]
        if self.params.vectors == "hashed-tfidf":
            if idf.shape != (1 << self.params.hash_bits,):
                raise ValueError(f"idf of {idf.shape} for hash_bits {self.params.hash_bits}")
            self.tfidf = HashedTfidf(self.params.hash_bits, idf=idf)
        if self.outcomes.shape != (self.train_vectors.shape[0], len(self.targets)):
            raise ValueError(f"outcomes of shape {self.outcomes.shape} for {self.train_vectors.shape[0]} prompts "
                             f"and {len(self.targets)} targets")
