"""Boosted trees (scikit-learn, flattened for inference) and the ``hashed-gbt`` classifier."""
import json

import numpy as np
import pytest

from ponder.router.classifiers import IncompatibleModel, build_classifier, load_classifier, registered, save_classifier
from ponder.router.classifiers.features import EXTENDED_NAMES, STRUCTURAL_NAMES, extended, structural
from ponder.router.classifiers.boosting import FlatTrees, fit_boosted, log_loss, staged_logits
from ponder.router.classifiers.calibration import expected_calibration_error


def xor_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    logit = 3.0 * np.sign(x[:, 0] * x[:, 1]) + 2.0 * (x[:, 2] > 0.5) - 1.0
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    return x, y, logit


def test_trees_fit_a_nonlinear_function_a_linear_model_cannot():
    x, y, _ = xor_data(3000, 0)
    xt, yt, logit_t = xor_data(2000, 1)
    model = fit_boosted(x, y, n_trees=150, depth=3, learning_rate=0.1, min_leaf=20, l2=1.0, max_bins=64, seed=0)
    flat = FlatTrees.from_sklearn(model)
    s = flat.score(xt)
    truth = float(log_loss(logit_t, yt))
    prior = float(log_loss(np.full(len(yt), flat.base), yt))
    # The XOR of two signs is invisible to any linear model; the trees get close to the true logit.
    assert float(log_loss(s, yt)) < truth + 0.1 < 0.5 * prior
    assert np.corrcoef(s, logit_t)[0, 1] > 0.9
    # The flattened copy is the library's model: batch path, single-row path and staged scores agree.
    assert np.allclose(s, model.decision_function(xt), atol=1e-9)
    assert np.allclose([flat.score_one(r) for r in xt[:50]], s[:50])
    assert np.allclose(staged_logits(model, xt[:50])[:, -1], s[:50])
    assert flat.depth <= 3 and len(FlatTrees.from_sklearn(model, 10).feature) == 10


def test_flat_trees_save_round_trip(tmp_path):
    x, y, _ = xor_data(500, 2)
    flat = FlatTrees.from_sklearn(fit_boosted(x, y, 20, 2, 0.1, 10, 1.0, 32, 0))
    np.savez(tmp_path / "t.npz", **flat.to_arrays("a_"))
    with np.load(tmp_path / "t.npz") as z:
        back = FlatTrees.from_arrays(z, "a_")
    assert np.array_equal(back.score(x), flat.score(x))


def test_splits_respect_min_leaf():
    rng = np.random.default_rng(2)
    x = rng.random((500, 3))
    y = x[:, 0] > 0.97  # only 15 positives: a pure split would need a 15-row leaf
    model = fit_boosted(x, y, 5, 2, 0.1, 40, 1.0, 16, 0)
    for pred in model._predictors:
        nodes = pred[0].nodes
        counts = nodes["count"][nodes["is_leaf"] == 1]
        assert counts.min() >= 40


def test_trees_reject_bad_shapes_and_one_class():
    with pytest.raises(ValueError, match="need rows"):
        fit_boosted(np.zeros((3, 2)), np.zeros(4), 5, 2, 0.1, 1, 1.0, 16, 0)
    with pytest.raises(ValueError, match="both classes"):
        fit_boosted(np.zeros((3, 2)), np.zeros(3), 5, 2, 0.1, 1, 1.0, 16, 0)


def test_extended_features_extend_structural():
    t = "Compute 12345 + 6.\nA. one\nB. two\n- three\n$x_1$ and the cat"
    f = extended(t)
    assert f.shape == (len(EXTENDED_NAMES),) and EXTENDED_NAMES[:len(STRUCTURAL_NAMES)] == STRUCTURAL_NAMES
    assert np.array_equal(f[:len(STRUCTURAL_NAMES)], structural(t))
    named = dict(zip(EXTENDED_NAMES, f))
    assert named["log_list_items"] == pytest.approx(np.log1p(3))
    assert named["log_longest_digit_run"] == pytest.approx(np.log1p(5))
    assert named["log_markup"] == pytest.approx(np.log1p(3))
    assert named["log_first_line"] == pytest.approx(np.log1p(len("Compute 12345 + 6.")))
    assert np.isfinite(extended("")).all()


def prompts(n=600, seed=0):
    """Correctness depends non-linearly on two structural traits: long AND numeric prompts are hard."""
    rng = np.random.default_rng(seed)
    texts, y, hard = [], [], []
    for i in range(n):
        long_, numeric = rng.random() < 0.5, rng.random() < 0.5
        body = " ".join(f"{rng.integers(100, 99999)} plus {rng.integers(10, 999)}" if numeric else "the cat sat"
                        for _ in range(12 if long_ else 2))
        texts.append(f"Question {i}: {body}?")
        h = long_ and numeric
        hard.append(h)
        y.append(rng.random() < (0.2 if h else 0.85))
    return texts, np.array(y), np.array(hard)


def test_hashed_gbt_is_registered_and_typed():
    assert "hashed-gbt" in registered()
    clf = build_classifier("hashed-gbt", {"depth": 2, "n_trees": 30})
    assert clf.params.depth == 2 and clf.params.learning_rate == 0.1
    with pytest.raises(Exception, match="classifier.params.depth"):
        build_classifier("hashed-gbt", {"depth": 0})


@pytest.mark.parametrize("params", [{"n_trees": 60}, {"n_trees": 60, "use_ngrams": False, "calibration": "isotonic"}])
def test_hashed_gbt_learns_an_interaction_and_is_calibrated(params):
    texts, y, _ = prompts()
    clf = build_classifier("hashed-gbt", params).fit(texts, {"pool": y})
    tt, ty, th = prompts(400, seed=1)
    p = clf.predict_proba(tt)[:, 0]
    assert ((0 <= p) & (p <= 1)).all()
    assert p[th].mean() < 0.4 and p[~th].mean() > 0.75
    assert expected_calibration_error(p, ty) < 0.1
    rep = clf.report["targets"]["pool"]
    assert 1 <= rep["n_trees"] <= 60 and rep["ece_calibrated"] < 0.1
    # The batch path and the per-prompt path give the same scores.
    assert np.allclose(clf.raw_scores(tt[:10]), super(type(clf), clf).raw_scores(tt[:10]))


def test_tree_count_is_chosen_by_inner_cv():
    rng = np.random.default_rng(3)
    texts = [f"prompt {i} " + "word " * int(rng.integers(1, 30)) for i in range(300)]
    noise = rng.random(300) < 0.5  # labels unrelated to the text: extra trees only overfit
    clf = build_classifier("hashed-gbt", {"n_trees": 80, "use_ngrams": False}).fit(texts, {"pool": noise})
    assert clf.report["targets"]["pool"]["n_trees"] < 40
    fixed = build_classifier("hashed-gbt", {"n_trees": 20, "select_trees": False, "use_ngrams": False})
    assert fixed.fit(texts, {"pool": noise}).report["targets"]["pool"]["n_trees"] == 20


def test_hashed_gbt_round_trip_and_version_refusal(tmp_path):
    texts, y, _ = prompts(300)
    other = np.where(np.arange(len(y)) % 3 == 0, np.nan, (~y).astype(float))
    clf = build_classifier("hashed-gbt", {"n_trees": 40, "hash_bits": 12}).fit(texts, {"weak": y, "strong": other})
    assert clf.report["targets"]["strong"]["n"] == 200
    d = save_classifier(clf, tmp_path / "m")
    back = load_classifier(d)
    assert back.targets == ["weak", "strong"] and back.params.hash_bits == 12
    assert np.allclose(back.predict_proba(texts[:20]), clf.predict_proba(texts[:20]), atol=1e-6)
    meta = json.loads((d / "model.json").read_text())
    assert meta["kind"] == "hashed-gbt" and meta["kind_version"] == 2
    meta["kind_version"] = 1
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(IncompatibleModel, match="hashed-gbt arrays of version 1, this ponder reads version 2"):
        load_classifier(d)
    meta["kind_version"] = 2
    (d / "model.json").write_text(json.dumps(meta))
    (d / "trees.npz").unlink()
    with pytest.raises(IncompatibleModel, match="trees.npz"):
        load_classifier(d)
