"""``minilm-gbt``: ``hashed-gbt``'s boosted trees with a reduced MiniLM embedding as extra features.

The dense features are the extended structural ones (``features.EXTENDED_NAMES``)
followed by the prompt's all-MiniLM-L6-v2 embedding (L2-normalised, 384
values) projected on its first ``pca_dims`` principal components. The
components are those of the training rows' embeddings (centred by their mean,
from one SVD; each component's sign fixed so its largest loading is positive),
fitted before anything else in ``fit``; training, the inner cross-validation
of the tree count, the n-gram stacking and the calibration are then exactly
``hashed-gbt``'s (``trees.CalibratedTrees``). The share of variance the
components keep lands in ``report``.

Optional extra, like ``minilm``: the encoder's packages are imported on the
first embedding, never at import; a missing one raises DependencyMissing.
Embeddings come from ``embedding.shared_encoder``, which remembers them per
process, so the folds of a cross-validation encode each prompt once.
"""
from __future__ import annotations

import pathlib
from typing import Callable

import numpy as np
from pydantic import Field

from ponder.router.classifiers.base import register
from ponder.router.classifiers.features import EXTENDED_NAMES, SparseRows, extended_matrix, sparse_ngrams
from ponder.router.classifiers.trees import CalibratedTrees, HashedGBTParams


class MiniLMGBTParams(HashedGBTParams):
    pca_dims: int = Field(16, ge=1, le=384, description="Principal components of the embedding fed to the trees.")
    batch_size: int = Field(32, ge=1, le=4096, description="Prompts per encoder batch.")
    max_seq_length: int = Field(256, ge=16, le=512, description="Word pieces the encoder reads per prompt.")
    threads: int | None = Field(None, ge=1, le=256, description="torch CPU threads; unset: torch's default.")
    cache_rows: int = Field(50_000, ge=0, le=10_000_000,
                            description="Embeddings remembered per process (1.5 KiB each); 0: none.")


@register
class MiniLMGBT(CalibratedTrees):
    name = "minilm-gbt"
    Params = MiniLMGBTParams

    def __init__(self, params: MiniLMGBTParams, encoder: Callable[[list[str]], np.ndarray] | None = None):
        """``encoder``: texts → embeddings (n, dim); unset, the process's shared MiniLM encoder."""
        super().__init__(params)
        self._encoder = encoder
        self.pca_mean = np.zeros(0)
        self.pca_components = np.zeros((0, 0))

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            from ponder.router.classifiers.embedding import shared_encoder

            p = self.params
            self._encoder = shared_encoder(p.max_seq_length, p.threads, p.batch_size, p.cache_rows)
        return np.asarray(self._encoder(list(texts)), dtype=np.float64)

    def fit(self, texts: list[str], labels: dict[str, np.ndarray]) -> "MiniLMGBT":
        if not texts:
            raise ValueError("no prompts to fit")
        emb = self.embed(texts)
        self.pca_mean = emb.mean(axis=0)
        _, s, vt = np.linalg.svd(emb - self.pca_mean, full_matrices=False)
        k = min(self.params.pca_dims, len(s))
        comps = vt[:k]
        signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
        self.pca_components = comps * np.where(signs == 0, 1.0, signs)[:, None]
        total = float(np.sum(s ** 2))
        super().fit(texts, labels)
        self.report["pca"] = {"dims": int(k),
                              "variance_kept": float(np.sum(s[:k] ** 2) / total) if total > 0 else 0.0}
        return self

    def dense(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(EXTENDED_NAMES) + len(self.pca_components)))
        proj = (self.embed(texts) - self.pca_mean) @ self.pca_components.T
        return np.c_[extended_matrix(texts), proj]

    def ngram_rows(self, texts: list[str]) -> SparseRows | None:
        p = self.params
        return sparse_ngrams(texts, p.ngram_orders, p.hash_bits) if p.use_ngrams else None

    def save_arrays(self, directory: pathlib.Path) -> None:
        super().save_arrays(directory)
        np.savez(directory / "pca.npz", mean=self.pca_mean, components=self.pca_components)

    def load_arrays(self, directory: pathlib.Path) -> None:
        super().load_arrays(directory)
        with np.load(directory / "pca.npz") as z:
            mean, comps = z["mean"], z["components"]
        if comps.ndim != 2 or mean.shape != (comps.shape[1],):
            raise ValueError(f"PCA mean of shape {mean.shape} does not match components of shape {comps.shape}")
        self.pca_mean, self.pca_components = mean, comps
