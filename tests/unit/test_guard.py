"""The no-harm guard: the length prior, the choice of β and the guarded classifier."""
import numpy as np
import pytest

from ponder.router.classifiers import build_classifier, load_classifier, save_classifier
from ponder.router.classifiers.guard import (
    MIN_SLOPE, LengthGuard, assign_folds, blend, choose_beta, fit_guard, fit_length_prior, log_length,
)
from ponder.router.training import metrics as M

SMALL_GBT = {"n_trees": 20, "calibration_folds": 2}


def length_table(n, seed=0, signal=True):
    """Prompts of random length; with ``signal`` only the long ones need the strong model, and the words
    carry nothing; without, outcomes are independent of the prompt."""
    rng = np.random.default_rng(seed)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    lengths = rng.integers(3, 120, size=n)
    prompts = [" ".join(rng.choice(words, size=k)) + f" #{i}" for i, k in enumerate(lengths)]
    if signal:
        hard = lengths > 60
        weak = rng.random(n) < np.where(hard, 0.2, 0.9)
    else:
        weak = rng.random(n) < 0.6
    strong = rng.random(n) < 0.9
    return prompts, weak.astype(float), strong.astype(float)


def content_table(n, seed=0):
    """Every prompt the same length; a keyword says whether the weak model fails."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.4
    prompts = [f"{'integral' if h else 'greeting'} item {i:05d}" for i, h in enumerate(hard)]
    weak = rng.random(n) < np.where(hard, 0.1, 0.9)
    strong = rng.random(n) < 0.92
    return prompts, weak.astype(float), strong.astype(float)


def test_prior_slope_follows_clear_data_and_is_floored_on_noise():
    rng = np.random.default_rng(0)
    ell = rng.normal(5, 1, 4000)
    strong = (rng.random(4000) < 0.9).astype(float)
    up = fit_length_prior(ell, (rng.random(4000) < np.where(ell > 5, 0.2, 0.9)).astype(float), strong)
    assert up.slope > 0.2 and up(np.array([7.0]))[0] > up(np.array([3.0]))[0]
    flat = fit_length_prior(ell, (rng.random(4000) < 0.6).astype(float), strong)
    assert flat.slope == pytest.approx(MIN_SLOPE) or flat.slope > MIN_SLOPE
    assert flat.slope < 0.05 and flat.gain == pytest.approx(0.3, abs=0.03)
    down = fit_length_prior(ell, (rng.random(4000) < np.where(ell > 5, 0.9, 0.2)).astype(float), strong)
    assert down.slope < -0.2  # a clear reversal is kept


def test_prior_with_unpaired_outcomes_uses_each_targets_own_rows():
    ell = np.array([1.0, 2.0, 3.0, 4.0])
    weak = np.array([1.0, np.nan, 0.0, np.nan])
    strong = np.array([np.nan, 1.0, np.nan, 1.0])
    pr = fit_length_prior(ell, weak, strong)
    assert pr.gain == pytest.approx(1.0 - 0.5)


def test_blend_keeps_the_mean_and_moves_only_the_gain():
    pw, ps, prior = np.array([0.2, 0.6]), np.array([0.8, 0.7]), np.array([0.0, 0.5])
    w0, s0 = blend(pw, ps, prior, 0.0)
    assert np.allclose(w0, pw) and np.allclose(s0, ps)
    w1, s1 = blend(pw, ps, prior, 1.0)
    assert np.allclose(s1 - w1, [0.0, 0.5]) and np.allclose(w1 + s1, pw + ps)
    w, s = blend(np.array([0.95]), np.array([0.99]), np.array([0.9]), 1.0)
    assert 0.0 <= w[0] <= 1.0 and 0.0 <= s[0] <= 1.0


def test_choose_beta_keeps_a_model_that_knows_and_drops_one_that_does_not():
    rng = np.random.default_rng(1)
    n = 3000
    w = (rng.random(n) < 0.5).astype(float)
    s = (rng.random(n) < 0.9).astype(float)
    fold = np.arange(n) % 3
    truth = s - w
    noise = rng.normal(0, 1, n)
    # The model's gain is the truth, the prior is noise: keep the model (β = 0).
    beta, rep = choose_beta(np.full(n, 0.5) - truth / 2, np.full(n, 0.5) + truth / 2, 0.01 * noise, w, s, fold)
    assert beta == 0.0 and rep["criterion"] == "apgr" and rep["model_only"] > rep["length_only"]
    # The model's gain is noise, the prior is the truth: fall back to the prior (β = 1).
    beta, rep = choose_beta(np.full(n, 0.5) - 0.1 * noise, np.full(n, 0.5) + 0.1 * noise, 0.4 * truth, w, s, fold)
    assert beta == 1.0 and rep["length_only"] > rep["model_only"]


def test_choose_beta_falls_back_when_the_model_is_no_better_than_chance():
    rng = np.random.default_rng(2)
    n = 1500
    w = (rng.random(n) < 0.5).astype(float)
    s = (rng.random(n) < 0.8).astype(float)
    fold = np.arange(n) % 3
    betas = [choose_beta(0.5 - 0.1 * g, 0.5 + 0.1 * g, 0.02 * rng.normal(0, 1, n), w, s, fold)[0]
             for g in rng.normal(0, 1, (6, n))]
    assert np.mean(np.array(betas) == 1.0) >= 0.5  # noise against noise: mostly the prior


def test_choose_beta_uses_log_loss_without_paired_rows():
    n = 600
    rng = np.random.default_rng(3)
    w = np.where(np.arange(n) % 2 == 0, (rng.random(n) < 0.5).astype(float), np.nan)
    s = np.where(np.arange(n) % 2 == 1, (rng.random(n) < 0.9).astype(float), np.nan)
    beta, rep = choose_beta(np.full(n, 0.5), np.full(n, 0.9), np.full(n, 0.4), w, s, np.arange(n) % 3)
    assert rep["criterion"] == "neg_log_loss" and 0.0 <= beta <= 1.0


def test_grouped_folds_keep_groups_whole():
    groups = ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] * 2
    fold, grouped = assign_folds(len(groups), 3, groups, 0)
    assert grouped
    for g in set(groups):
        assert len({fold[i] for i, x in enumerate(groups) if x == g}) == 1
    _, grouped = assign_folds(len(groups), 5, groups, 0)
    assert not grouped


def test_guard_falls_back_to_length_when_only_length_tells():
    prompts, w, s = length_table(900)
    g = fit_guard(lambda: build_classifier("hashed-gbt", SMALL_GBT), prompts, {"w": w, "s": s}, ("w", "s"))
    assert g.beta >= 0.5 and g.prior.slope > 0.1
    # At β = 1 the guarded order is exactly the length order.
    full = LengthGuard(1.0, g.prior, "w", "s")
    probs = full.apply(np.full((len(prompts), 2), 0.5), prompts, ["w", "s"])
    assert np.array_equal(np.argsort(probs[:, 1] - probs[:, 0], kind="stable"),
                          np.argsort(log_length(prompts), kind="stable"))


def test_guard_keeps_a_model_that_reads_the_prompt():
    prompts, w, s = content_table(900)
    g = fit_guard(lambda: build_classifier("hashed-gbt", SMALL_GBT), prompts, {"w": w, "s": s}, ("w", "s"))
    assert g.beta <= 0.3
    assert g.report["by_beta"]["0.00"] > g.report["by_beta"]["1.00"] + 0.2


def test_guarded_classifier_routes_no_worse_than_length_and_round_trips(tmp_path):
    prompts, w, s = length_table(900, seed=4)
    clf = build_classifier("hashed-gbt", SMALL_GBT).fit_guarded(prompts, {"w": w, "s": s}, ("w", "s"))
    assert clf.report["guard"]["beta"] == clf.guard.beta
    test_p, tw, ts = length_table(600, seed=5)
    guarded = M.apgr(M.router_curve(clf.gain_score(test_p, "w", "s"), tw, ts))
    length = M.apgr(M.router_curve(log_length(test_p), tw, ts))
    assert guarded >= length - 0.02
    back = load_classifier(save_classifier(clf, tmp_path / "m"))
    assert back.guard is not None and back.guard.beta == clf.guard.beta
    assert np.allclose(back.predict_proba(test_p), clf.predict_proba(test_p))


def test_guard_refuses_a_role_that_is_not_a_target():
    with pytest.raises(ValueError, match="not among the targets"):
        fit_guard(lambda: None, ["a", "b", "c"], {"w": np.ones(3)}, ("w", "s"))


def test_cross_validation_with_the_guard_reports_each_folds_choice():
    from ponder.router.training.evaluate import cross_validate
    from ponder.router.training.outcomes import OutcomeTable

    prompts, w, s = length_table(600, seed=6)
    files = [f"f{i % 4}.csv" for i in range(len(prompts))]
    t = OutcomeTable(prompts, {"w": w > 0.5, "s": s > 0.5}, files)
    res = cross_validate(t, "w", "s", k=3, classifier="hashed-gbt", params=SMALL_GBT, guard=True)
    assert len(res["guard_beta"]) == 3 and all(0.0 <= b <= 1.0 for b in res["guard_beta"])
    assert res["apgr"] >= res["baselines"]["length"]["apgr"] - 0.03


def test_retrain_fits_the_guard_on_the_least_and_most_accurate_pool():
    from ponder.router.training.retrain import fit_pools, guard_roles

    prompts, w, s = length_table(600, seed=7)
    half = np.arange(len(prompts)) % 2 == 0  # each prompt answered by one pool, as in a serving log
    labels = {"small": np.where(half, w, np.nan), "big": np.where(~half, s, np.nan)}
    assert guard_roles(labels) == ("small", "big")
    clf = fit_pools("hashed-gbt", SMALL_GBT, prompts, labels, guard=True)
    assert clf.guard is not None and clf.report["guard"]["criterion"] == "neg_log_loss"
    assert fit_pools("hashed-gbt", SMALL_GBT, prompts, labels, guard=False).guard is None
