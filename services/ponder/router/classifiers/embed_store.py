"""Embeddings on disk, so retrains and cross-validations in later processes skip the encoder.

One SQLite file (the standard library's ``sqlite3``; safe for several
processes, each write one transaction) with one table: key = SHA-256 of the
encoder's id and the text, value = the embedding's float32 bytes. The id names
the model and everything that changes its output (weights version, how many
word pieces it reads), so a new model or setting never reads old rows.

``default_path`` is ``$PONDER_EMBEDDING_CACHE``, else
``$XDG_CACHE_HOME/ponder/embeddings.sqlite`` (``~/.cache`` without it);
``off`` turns the store off. A store that cannot be opened or written is
skipped with a warning, never fatal: it only saves time.
"""
from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import sqlite3
import threading
from typing import Iterable, Sequence

import numpy as np

log = logging.getLogger(__name__)
ENV = "PONDER_EMBEDDING_CACHE"


def default_path() -> pathlib.Path | None:
    """Where embeddings are stored by default; None when ``$PONDER_EMBEDDING_CACHE`` is ``off``."""
    v = os.environ.get(ENV)
    if v == "off":
        return None
    if v:
        return pathlib.Path(v)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "ponder" / "embeddings.sqlite"


def text_key(encoder_id: str, text: str) -> bytes:
    """SHA-256 of the encoder id and the text (32 bytes)."""
    h = hashlib.sha256(encoder_id.encode("utf-8"))
    h.update(b"\0")
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.digest()


class EmbeddingStore:
    """Embeddings (float32 rows) by ``text_key`` in the SQLite file at ``path``."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS emb (key BLOB PRIMARY KEY, vec BLOB NOT NULL)")

    def get(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """The stored rows among ``keys``."""
        out: dict[bytes, np.ndarray] = {}
        keys = list(dict.fromkeys(keys))
        with self._lock:
            for i in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                chunk = keys[i:i + 500]
                q = f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})"
                for k, v in self._db.execute(q, chunk):
                    out[bytes(k)] = np.frombuffer(v, dtype=np.float32)
        return out

    def put(self, rows: Iterable[tuple[bytes, np.ndarray]]) -> None:
        data = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in rows]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)", data)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM emb").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(path: str | os.PathLike[str] | None) -> EmbeddingStore | None:
    """The store at ``path``; None for no path or one that cannot be opened (logged)."""
    if path is None:
        return None
    try:
        return EmbeddingStore(path)
    except (OSError, sqlite3.Error) as e:
        log.warning("embedding store %s unusable, embeddings stay in memory: %s", path, e)
        return None
