"""Router metrics against hand-computed cases."""
import numpy as np
import pytest

from ponder.router.training import metrics as M

# weak right on row 0 only; strong right on rows 0-2. Gains: 0, 1, 1, 0.
WEAK = np.array([1, 0, 0, 0], dtype=bool)
STRONG = np.array([1, 1, 1, 0], dtype=bool)


def test_router_curve_points_and_apgr():
    c = M.router_curve(np.array([4.0, 3.0, 2.0, 1.0]), WEAK, STRONG)
    assert np.allclose(c.x, [0, 0.25, 0.5, 0.75, 1])
    assert np.allclose(c.acc, [0.25, 0.25, 0.5, 0.75, 0.75])
    # area = 0.25 * (0.25 + 0.375 + 0.625 + 0.75) = 0.5; (0.5 - 0.25) / 0.5
    assert M.apgr(c) == pytest.approx(0.5)
    assert M.pgr(c, 0.5) == pytest.approx(0.5)
    assert M.pgr(c, 0.75) == pytest.approx(1.0)
    assert M.cpt(c, 50) == pytest.approx(0.5)
    assert M.cpt(c, 80) == pytest.approx(0.75)  # needs acc >= 0.65


def test_oracle_curve():
    c = M.oracle_curve(WEAK, STRONG)
    assert np.allclose(c.acc, [0.25, 0.5, 0.75, 0.75, 0.75])
    assert M.apgr(c) == pytest.approx(0.75)  # area 0.625
    assert M.cpt(c, 100) == pytest.approx(0.5)


def test_oracle_routes_weak_only_wins_last():
    weak = np.array([1, 0, 1], dtype=bool)
    strong = np.array([0, 1, 1], dtype=bool)
    c = M.oracle_curve(weak, strong)
    assert np.allclose(c.acc, [2 / 3, 1.0, 1.0, 2 / 3])


def test_random_curve_is_the_straight_line():
    c = M.random_curve(WEAK, STRONG)
    assert np.allclose(c.acc, [0.25, 0.375, 0.5, 0.625, 0.75])
    assert M.apgr(c) == pytest.approx(0.5)
    assert M.cpt(c, 50) == pytest.approx(0.5)


def test_tied_scores_give_the_expected_random_order():
    c = M.router_curve(np.zeros(4), WEAK, STRONG)
    assert np.allclose(c.acc, M.random_curve(WEAK, STRONG).acc)
    # A tie between the two winning rows only: exact either way.
    c2 = M.router_curve(np.array([0.0, 5.0, 5.0, -1.0]), WEAK, STRONG)
    assert np.allclose(c2.acc, [0.25, 0.5, 0.75, 0.75, 0.75])


def test_reversed_router_is_below_random():
    c = M.router_curve(-(STRONG.astype(float) - WEAK), WEAK, STRONG)
    assert M.apgr(c) < 0.5


def test_undefined_when_strong_is_not_better():
    c = M.router_curve(np.arange(2.0), np.array([1, 0], bool), np.array([0, 1], bool))
    with pytest.raises(M.MetricUndefined, match="not above"):
        M.apgr(c)
    with pytest.raises(M.MetricUndefined, match="2 scores for 3 rows"):
        M.router_curve(np.arange(2.0), np.ones(3, bool), np.ones(3, bool))


def test_expected_calibration_error():
    p = np.array([0.1, 0.1, 0.9, 0.9])
    y = np.array([0, 0, 1, 1])
    # bin 1: |0.2 - 0|, bin 9: |1.8 - 2|  -> 0.4 / 4
    assert M.expected_calibration_error(p, y) == pytest.approx(0.1)
    assert M.expected_calibration_error(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.0)
    assert M.expected_calibration_error(np.array([1.0, 1.0]), np.array([0, 0])) == pytest.approx(1.0)


def test_cost_curve_against_hand_computed_points():
    # Two prompts, models a (cost 1) and b (cost 3): a is right on prompt 0 only, b on both.
    out = np.array([[1, 1], [0, 1]], dtype=bool)
    probs = np.array([[0.9, 0.95], [0.2, 0.9]])
    c = M.cost_curve(probs, out, np.array([1.0, 3.0]))
    # λ = ∞: both to a (x 0, acc 0.5); mid λ: prompt 1 to b (x 0.5, acc 1); λ = 0: both to b (x 1, acc 1).
    pts = set(zip(np.round(c.x, 6), np.round(c.acc, 6)))
    assert {(0.0, 0.5), (0.5, 1.0), (1.0, 1.0)} <= pts
    s = M.cost_summary(probs, out, np.array([1.0, 3.0]), ["a", "b"])
    # Router: 0.5 → 1 over x in [0, 0.5], then 1: area 0.375 + 0.5.
    assert s["auc"] == pytest.approx(0.875)
    assert s["baselines"]["random"]["auc"] == pytest.approx(0.75)
    assert s["baselines"]["oracle"]["auc"] == pytest.approx(0.875)
    # Best single model: a (0.5) until b is affordable at x = 1.
    assert s["baselines"]["best_single"]["auc"] == pytest.approx(0.5, abs=0.01)
    assert s["baselines"]["best_single"]["model"] == "b"
    with pytest.raises(M.MetricUndefined, match="2 costs for 3 models"):
        M.cost_curve(np.zeros((2, 3)), np.zeros((2, 3)), np.array([1.0, 2.0]))


def test_cascade_curve_counts_the_weak_call():
    from ponder.router.training.cascade import cascade_curve

    conf = np.array([0.9, 0.1, 0.2, 0.8])  # escalates row 1, then row 2 (the strong-only rows), first
    by_share = M.router_curve(-conf, WEAK, STRONG)
    assert np.allclose(by_share.acc, [0.25, 0.5, 0.75, 0.75, 0.75])
    # Costs 1 and 2: escalating the share e costs x = 2e, so at x = 1 only half the rows escalate.
    c = cascade_curve(conf, WEAK, STRONG, 1.0, 2.0)
    assert c.at(1.0) == pytest.approx(0.75) and c.at(0.5) == pytest.approx(0.5)
    assert M.apgr(c) < M.apgr(by_share)
    with pytest.raises(M.MetricUndefined, match="weak cost < strong cost"):
        cascade_curve(conf, WEAK, STRONG, 2.0, 1.0)
