"""Prompt vectors for the neighbour and factorisation routers.

``HashedTfidf``: scikit-learn's ``HashingVectorizer`` (word uni- and bigrams,
lower-cased, every digit mapped to ``0`` so numbers generalise, ``2**hash_bits``
columns, no vocabulary to store) with sublinear term frequency, the inverse
document frequency of the training prompts and L2-normalised rows: a sparse
CSR matrix whose row dot products are cosine similarities. Its learned state
is one ``idf`` array.

``minilm_vectors``: the process's shared, remembering all-MiniLM-L6-v2
encoder (``embedding.shared_encoder``; the ``embed`` extra), L2-normalised,
as a CSR matrix so both kinds go through the same code.
"""
from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp

_DIGIT = re.compile(r"\d")


def normalise(text: str) -> str:
    return _DIGIT.sub("0", text.lower())


class HashedTfidf:
    """Texts → L2-normalised tf-idf rows over hashed word n-grams; ``fit`` learns the idf."""

    def __init__(self, hash_bits: int = 18, ngram_max: int = 2, idf: np.ndarray | None = None):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.hash_bits, self.ngram_max = hash_bits, ngram_max
        self._hasher = HashingVectorizer(n_features=1 << hash_bits, ngram_range=(1, ngram_max), alternate_sign=False,
                                         norm=None, preprocessor=normalise, dtype=np.float32)
        self.idf = idf

    def _counts(self, texts: list[str]) -> sp.csr_matrix:
        x = self._hasher.transform(texts).tocsr()
        x.data = 1.0 + np.log(x.data)  # sublinear term frequency
        return x

    def fit(self, texts: list[str]) -> "HashedTfidf":
        x = self._counts(texts)
        df = np.bincount(x.indices, minlength=x.shape[1])
        self.idf = (np.log((1 + len(texts)) / (1 + df)) + 1.0).astype(np.float32)
        return self

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        if self.idf is None:
            raise ValueError("HashedTfidf used before fit")
        x = self._counts(texts)
        x.data *= self.idf[x.indices]
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ x, dtype=np.float32)


def minilm_vectors(texts: list[str], max_seq_length: int = 256, batch_size: int = 32,
                   cache_rows: int = 50_000) -> sp.csr_matrix:
    """MiniLM embeddings (L2-normalised) as CSR rows; DependencyMissing without the ``embed`` extra."""
    from ponder.router.classifiers.embedding import shared_encoder

    enc = shared_encoder(max_seq_length, None, batch_size, cache_rows)
    emb = np.asarray(enc(list(texts)), dtype=np.float32) if texts else np.zeros((0, 384), dtype=np.float32)
    return sp.csr_matrix(emb)
