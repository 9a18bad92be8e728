"""Answer confidence for cascades: features, fit, save/load, the escalation rule."""
import numpy as np
import pytest

from ponder.router.confidence import (
    FEATURE_NAMES, ConfidenceScorer, answer_features, checked_equations, feature_matrix, final_answer, should_escalate,
)


def test_checked_equations_and_final_answer():
    good = "She has 16 - 3 = 13 eggs, then 13 - 4 = 9. She earns 9 * 2 = $<<9*2=18>>18.\n#### 18"
    assert checked_equations(good) == (4, 0)  # three written equations and one calculator annotation
    assert checked_equations("So 12 + 5 = 18 and <<3*3=10>>10") == (2, 2)
    assert final_answer(good) == "18.0"
    assert final_answer("The answer is 1,250.") == "1250.0"
    assert final_answer("no digits here") is None


def test_features_name_what_they_measure():
    prompt = "Janet has 16 eggs and eats 3. How many are left?"
    f = dict(zip(FEATURE_NAMES, answer_features(prompt, "16 - 3 = 13.\n#### 13")))
    assert f["has_final_marker"] == 1 and f["clean_ending"] == 1 and f["wrong_equation_share"] == 0
    assert f["final_is_last_result"] == 1 and f["prompt_numbers_used"] == 1 and f["has_logprobs"] == 0
    cut = dict(zip(FEATURE_NAMES, answer_features(prompt, "She starts with 16 - 3 = 12 and th")))
    assert cut["has_final_marker"] == 0 and cut["clean_ending"] == 0 and cut["wrong_equation_share"] == 1
    lp = dict(zip(FEATURE_NAMES, answer_features(prompt, "13", token_logprobs=[-0.1, -2.0], samples=["13", "12"],
                                                 prior=0.5)))
    assert lp["has_logprobs"] == 1 and lp["min_logprob"] == pytest.approx(-2.0) and lp["low_logprob_share"] == 0.5
    assert lp["has_samples"] == 1 and lp["sample_agreement"] == 0.5 and lp["has_prior"] == 1
    with pytest.raises(ValueError, match="2 prompts but 1 answers"):
        feature_matrix(["a", "b"], ["x"])


def synth(n, seed):
    """Right answers end with a marked final value and correct arithmetic; wrong ones are cut off or miscomputed."""
    rng = np.random.default_rng(seed)
    prompts, answers, y = [], [], []
    for _ in range(n):
        a, b = (int(v) for v in rng.integers(2, 99, size=2))
        prompts.append(f"Add {a} and {b}.")
        right = rng.random() < 0.6
        if right:
            answers.append(f"{a} + {b} = {a + b}.\n#### {a + b}")
        elif rng.random() < 0.5:
            answers.append(f"{a} + {b} = {a + b + 1}.\n#### {a + b + 1}")
        else:
            answers.append(f"First we take {a} + {b} and th")
        y.append(right)
    return prompts, answers, np.array(y)


def test_scorer_learns_calibrates_and_round_trips(tmp_path):
    p, a, y = synth(400, 0)
    scorer = ConfidenceScorer().fit(feature_matrix(p, a), y)
    tp, ta, ty = synth(200, 1)
    conf = scorer.predict_features(feature_matrix(tp, ta))
    assert conf[ty].min() > conf[~ty].max()
    assert scorer.report["oof_ece"] < 0.1
    back = ConfidenceScorer.load(scorer.save(tmp_path / "conf.json"))
    assert back.score(tp[0], ta[0]) == pytest.approx(scorer.score(tp[0], ta[0]))
    with pytest.raises(ValueError, match="need both classes"):
        ConfidenceScorer().fit(feature_matrix(p, a), np.ones(400, dtype=bool))


def test_should_escalate_weighs_gain_against_lambda():
    assert should_escalate(0.2, 0.9, lam=0.001, strong_cost_cu=100)
    assert not should_escalate(0.2, 0.9, lam=0.01, strong_cost_cu=100)
    assert not should_escalate(0.9, 0.9, lam=0.0, strong_cost_cu=100)
