"""Allocation arithmetic on outcome tables: vote accuracy, the policy's n, curves and ratios."""
from __future__ import annotations

import numpy as np
import pytest

from ponder.router.strategies.accuracy import majority_vote_accuracy
from ponder.tasksets import allocation as al


def test_vote_accuracy_hand_cases():
    assert np.allclose(al.vote_accuracy([5, 5, 5], 5, 50), 1.0)
    assert np.allclose(al.vote_accuracy([1, 2, 3], 9, 50), 0.0)
    # one right among three distinct answers: 1/3 at n=1; at n=3 a three-way tie, so 1/3 again
    acc = al.vote_accuracy([5, 6, 7], 5, 3000, seed=1)
    assert acc[0] == pytest.approx(1 / 3, abs=0.03) and acc[2] == pytest.approx(1 / 3, abs=1e-9)
    # two right of three: n=3 always right, n=1 right 2/3 of the time
    acc = al.vote_accuracy([5, 5, 7], 5, 3000, seed=2)
    assert acc[0] == pytest.approx(2 / 3, abs=0.03) and acc[2] == pytest.approx(1.0)
    # unparseable samples do not vote; with no votes the question is wrong
    assert al.vote_accuracy([None, None], 1, 10)[1] == 0.0
    assert al.vote_accuracy([None, 4], 4, 10)[1] == 1.0


def test_policy_n_follows_the_majority_vote_model():
    assert al.choose_samples(0.3, 16, 0.0) == 1  # voting hurts below 1/2
    assert al.choose_samples(0.99999, 16, 1e-3) == 1  # nothing left to gain
    n = al.choose_samples(0.7, 16, 1e-3)
    assert 3 <= n <= 16
    best = max(range(1, 17), key=lambda k: (majority_vote_accuracy(0.7, k) - 1e-3 * k, -k))
    assert n == best


def test_allocation_curve_spends_more_where_it_pays():
    # two questions: one hopeless, one where voting helps; uniform spends on both
    vacc = np.array([[0.0] * 9, [0.6, 0.6, 0.65, 0.65, 0.68, 0.68, 0.7, 0.7, 0.72]])
    curve = al.allocation_curve(np.array([0.05, 0.6]), vacc, [0.0, 1e-3, 1.0])
    lam0 = curve[0]
    assert lam0[1] == pytest.approx((1 + 9) / 2) and lam0[2] == pytest.approx(0.72 / 2)
    assert curve[-1][1] == 1.0  # a steep price buys one sample each
    uniform = al.uniform_curve(vacc)
    assert uniform[-1] == (9, pytest.approx(0.36))


def test_samples_at_accuracy_interpolates_on_the_hull():
    pts = [(1, 0.5), (2, 0.45), (3, 0.7), (5, 0.8)]
    assert al.lower_hull(pts) == [(1, 0.5), (3, 0.7), (5, 0.8)]
    assert al.samples_at_accuracy(pts, 0.6) == pytest.approx(2.0)
    assert al.samples_at_accuracy(pts, 0.5) == 1
    assert al.samples_at_accuracy(pts, 0.9) is None
    assert al.accuracy_at_samples(pts, 4) == pytest.approx(0.75)
    assert al.accuracy_at_samples(pts, 0.5) is None


def test_cross_validation_never_scores_a_question_with_a_model_that_saw_it():
    texts = [f"q{i}" for i in range(10)]
    labels = [[True, False]] * 10

    def fit_predict(tr_t, tr_y, te_t):
        assert not set(tr_t) & set(te_t) and len(tr_t) == 2 * (10 - len(te_t))
        return np.full(len(te_t), 0.5)

    out = al.cross_val_predict(texts, labels, 5, 0, fit_predict)
    assert out.shape == (10,) and np.all(out == 0.5)
    with pytest.raises(ValueError):
        al.cross_val_predict(texts, labels, 1, 0, fit_predict)


def test_think_choice_is_the_policy_rule():
    # gain 0: thinking never beats answering when it costs more
    assert not al.think_choice(0.5, 48, 0.0, 256, 1e-3, 3, 50)
    # a large gain near p = 1/2 pays for the tokens; the same gain at p = 0.999 does not
    assert al.think_choice(0.5, 48, 4.0, 256, 1e-3, 3, 50)
    assert not al.think_choice(0.999, 48, 4.0, 256, 1e-3, 3, 50)
