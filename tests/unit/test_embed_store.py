"""Embeddings on disk across processes: the SQLite store keyed by encoder id + text hash."""
import numpy as np

from ponder.router.classifiers import embed_store
from ponder.router.classifiers.embed_store import EmbeddingStore, open_store, text_key
from ponder.router.classifiers.embedding import CachedEncoder


def counting_encoder(calls):
    def encode(texts):
        calls.extend(texts)
        return np.array([[len(t), t.count("a"), 1.0] for t in texts])
    return encode


def test_store_round_trip_and_keys_depend_on_the_encoder(tmp_path):
    s = EmbeddingStore(tmp_path / "e.sqlite")
    k1, k2 = text_key("m1", "hello"), text_key("m2", "hello")
    assert k1 != k2 and len(k1) == 32
    s.put([(k1, np.array([1.0, 2.0]))])
    got = s.get([k1, k2, k1])
    assert list(got) == [k1] and got[k1].dtype == np.float32 and got[k1].tolist() == [1.0, 2.0]
    assert len(s) == 1
    s.close()
    assert len(EmbeddingStore(tmp_path / "e.sqlite")) == 1  # persisted


def test_a_later_encoder_reads_the_store_and_encodes_only_new_prompts(tmp_path):
    path = tmp_path / "e.sqlite"
    calls = []
    first = CachedEncoder(counting_encoder(calls), 100, EmbeddingStore(path), "m1")
    a = first(["banana", "apple", "banana"])
    assert calls == ["banana", "apple"]
    # A fresh process: empty memory, same store.
    calls.clear()
    later = CachedEncoder(counting_encoder(calls), 100, EmbeddingStore(path), "m1")
    b = later(["apple", "banana", "cherry"])
    assert calls == ["cherry"] and later.from_store == 2 and later.encoded == 1
    assert np.array_equal(b[0], a[1]) and np.array_equal(b[1], a[0])
    later(["apple", "cherry"])  # now in memory: neither the store nor the encoder is asked
    assert calls == ["cherry"] and later.from_store == 2
    # Another encoder id never reads these rows.
    calls.clear()
    other = CachedEncoder(counting_encoder(calls), 0, EmbeddingStore(path), "m2")
    other(["apple"])
    assert calls == ["apple"] and other.from_store == 0


def test_default_path_and_an_unusable_store(tmp_path, monkeypatch):
    monkeypatch.setenv(embed_store.ENV, "off")
    assert embed_store.default_path() is None
    monkeypatch.setenv(embed_store.ENV, str(tmp_path / "x.sqlite"))
    assert embed_store.default_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv(embed_store.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert embed_store.default_path() == tmp_path / "ponder" / "embeddings.sqlite"
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert open_store(blocker / "sub" / "e.sqlite") is None
    assert open_store(None) is None
