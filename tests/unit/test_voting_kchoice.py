"""The k formula against hand-computed values, and the gambler's-ruin expectations."""
from __future__ import annotations

import math

import pytest

from ponder.common.errors import InvalidArgument
from ponder.voting.kchoice import (
    choose_k,
    estimate_p,
    expected_samples_per_step,
    expected_votes_per_step,
    p_lower_bound,
    samples_for_bound,
    task_success,
    voted_step_success,
)


def test_voted_step_success_hand_values():
    assert voted_step_success(0.75, 1) == pytest.approx(0.75)
    assert voted_step_success(0.75, 2) == pytest.approx(0.9)  # 1 / (1 + 1/9)
    assert voted_step_success(0.9, 3) == pytest.approx(729 / 730)  # 1 / (1 + 1/729)


@pytest.mark.parametrize(
    "p, steps, target, k",
    [
        # r = 1/99: r^3 = 1.03e-6 gives (1+r^3)^-s = 0.34 < 0.95; r^4 = 1.04e-8 gives 0.989
        (0.99, 2**20 - 1, 0.95, 4),
        # r = 1/9, need r^k <= 0.9^-0.1 - 1 = 0.01059: r^2 = 0.0123 no, r^3 = 0.00137 yes
        (0.9, 10, 0.9, 3),
        # r = 1/3, need r^k <= 1/0.85 - 1 = 0.1765: r = 0.333 no, r^2 = 0.111 yes
        (0.75, 1, 0.85, 2),
        # one step already meets a low target
        (0.8, 1, 0.7, 1),
        # r = 1/4, s = 1000, t = 0.99: r^k <= 1.005e-5; 4^-8 = 1.5e-5 no, 4^-9 = 3.8e-6 yes
        (0.8, 1000, 0.99, 9),
    ],
)
def test_choose_k_hand_values(p, steps, target, k):
    got = choose_k(p, steps, target)
    assert got == k
    assert task_success(p, got, steps) >= target
    if got > 1:
        assert task_success(p, got - 1, steps) < target


def test_choose_k_grows_like_log_s():
    ks = [choose_k(0.99, 2**e, 0.95) for e in range(10, 21)]
    assert ks == sorted(ks) and ks[0] < ks[-1] <= ks[0] + 2


@pytest.mark.parametrize("p", [0.5, 0.3, 1.0, 1.2])
def test_p_outside_half_to_one_is_rejected_naming_the_field(p):
    with pytest.raises(InvalidArgument) as e:
        choose_k(p, 10, 0.9, field_p="voting.p")
    assert e.value.field == "voting.p"


def test_target_and_steps_are_checked():
    with pytest.raises(InvalidArgument) as e:
        choose_k(0.9, 10, 1.0)
    assert e.value.field == "target_success"
    with pytest.raises(InvalidArgument):
        choose_k(0.9, 0, 0.9)


def _ruin_duration(p, k):
    """Expected steps of the +-1 walk from 0 to +-k, by solving the linear recurrence numerically."""
    n = 2 * k + 1  # states -k..k
    e = [0.0] * n
    for _ in range(20000):
        e = [0.0] + [1 + p * e[i + 1] + (1 - p) * e[i - 1] for i in range(1, n - 1)] + [0.0]
    return e[k]


@pytest.mark.parametrize("p, k", [(0.6, 1), (0.6, 3), (0.9, 2), (0.99, 4)])
def test_expected_votes_match_the_recurrence(p, k):
    assert expected_votes_per_step(p, k) == pytest.approx(_ruin_duration(p, k), rel=1e-6)


def test_expected_samples_include_red_flags():
    assert expected_votes_per_step(0.8, 1) == pytest.approx(1.0)
    assert expected_samples_per_step(0.8, 1, red_flag_rate=0.5) == pytest.approx(2.0)


def test_estimate_p_and_wilson_interval():
    p, lo, hi = estimate_p(90, 100)
    assert p == 0.9 and lo < 0.9 < hi
    assert lo == pytest.approx(0.8256, abs=1e-3) and hi == pytest.approx(0.9448, abs=1e-3)
    with pytest.raises(InvalidArgument):
        estimate_p(0, 0)


def test_task_success_is_a_power_of_the_step_success():
    assert task_success(0.9, 2, 5) == pytest.approx(voted_step_success(0.9, 2) ** 5)
    assert math.isclose(task_success(0.99, 4, 2**20 - 1), 0.98915, rel_tol=1e-3)


@pytest.mark.parametrize("n", [1, 10, 64, 1000])
def test_all_correct_lower_bound_is_n_over_n_plus_z_squared(n):
    z = 1.6448536269514722  # one-sided 95 %
    assert p_lower_bound(n, n) == pytest.approx(n / (n + z * z), rel=1e-9)
    assert p_lower_bound(n, n) < 1.0


def test_lower_bound_hand_value_and_ordering():
    # 90/100, one-sided 95 % (z = 1.6449): Wilson centre 0.8895, half-width 0.0498 -> 0.8396
    assert p_lower_bound(90, 100) == pytest.approx(0.8396, abs=1e-3)
    _, lo95, _ = estimate_p(90, 100)  # two-sided 95 % is the one-sided 97.5 % bound
    assert p_lower_bound(90, 100, 0.975) == pytest.approx(lo95, rel=1e-5)  # z = 1.96 there
    assert p_lower_bound(0, 20) == 0.0
    bounds = [p_lower_bound(n, n) for n in (5, 20, 80)]
    assert bounds == sorted(bounds)  # more evidence, tighter bound


def test_lower_bound_rejects_bad_input_naming_the_field():
    with pytest.raises(InvalidArgument) as e:
        p_lower_bound(3, 4, confidence=0.4)
    assert e.value.field == "voting.calibration_confidence"
    with pytest.raises(InvalidArgument):
        p_lower_bound(0, 0)
    with pytest.raises(InvalidArgument):
        p_lower_bound(5, 4)


def test_samples_for_bound_is_the_smallest_sufficient_count():
    for floor in (0.5, 0.9, 0.99):
        n = samples_for_bound(floor)
        assert p_lower_bound(n, n) > floor >= p_lower_bound(n - 1, n - 1)


def test_a_perfect_short_calibration_does_not_give_k_1():
    # 7 Hanoi steps at target 0.95 need r^k <= 0.00735: k = 1 only for p >= 0.9927.
    assert choose_k(p_lower_bound(64, 64), 7, 0.95) >= 2
    assert choose_k(p_lower_bound(20, 20), 7, 0.95) >= 3
    # Enough evidence does support k = 1: the bound passes 0.9927 only after ~370 all-correct samples.
    n = samples_for_bound(0.9927)
    assert choose_k(p_lower_bound(n, n), 7, 0.95) == 1
