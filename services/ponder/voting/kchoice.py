"""Choosing k: how many votes of lead each step needs for the whole task to succeed.

Derivation. Let p be the chance that one valid sample of a step is correct and
q = 1 - p, and assume the worst case: every wrong sample names the same wrong
answer (wrong answers spread over several results only make voting safer). The
lead D = votes(correct) - votes(wrong) is a random walk that moves +1 with
probability p and -1 with probability q, and the step ends when D reaches +k
(correct wins) or -k (wrong wins). Shifted to start at k between absorbing
barriers 0 and 2k, this is gambler's ruin, so with r = q/p:

    P(correct wins) = (1 - r^k) / (1 - r^(2k)) = 1 / (1 + r^k)

Steps are independent, so a task of s steps succeeds with probability
(1 + r^k)^(-s). Requiring this to be at least the target t:

    s * ln(1 + r^k) <= -ln t   <=>   r^k <= expm1(-ln(t) / s)
                               <=>   k >= ln(expm1(-ln(t) / s)) / ln(r)

(ln r < 0 flips the inequality), and k is the smallest integer >= 1 meeting
it. The expected number of votes per step is gambler's ruin's duration from k:

    E[votes] = k / (p - q) * (1 - r^k) / (1 + r^k)

and red-flagged samples inflate it by 1 / (1 - red-flag rate). Since
expm1(x) ~ x for small x, k ~ ln(s / -ln t) / ln(1/r) = Theta(ln s), so the
whole task costs Theta(s ln s) samples.

p itself is only estimated from a calibration sample, so k is chosen from a
one-sided lower confidence bound on p (``p_lower_bound``, Wilson's score
bound), not the point estimate: with c of n valid samples correct the bound is
the smaller root of (p̂ - p)^2 = z^2 p (1 - p) / n. An all-correct sample of n
gives n / (n + z^2), never 1, so a perfect but short calibration still asks for
enough lead to cover what the sample cannot rule out.
"""
from __future__ import annotations

import math
from statistics import NormalDist

from ponder.common.errors import InvalidArgument


def _check_p(p: float, field: str = "p") -> None:
    if not 0.5 < p < 1.0:
        raise InvalidArgument(field, f"must be in (0.5, 1), got {p}")


def voted_step_success(p: float, k: int) -> float:
    """Chance one step's vote picks the correct answer; in (0.5, 1) for p in (0.5, 1)."""
    _check_p(p)
    return 1.0 / (1.0 + ((1.0 - p) / p) ** k)


def task_success(p: float, k: int, steps: int) -> float:
    """Chance all ``steps`` voted steps are correct: (1 + r^k)^(-steps)."""
    _check_p(p)
    r = (1.0 - p) / p
    return math.exp(-steps * math.log1p(r**k))


def choose_k(p: float, steps: int, target: float, field_p: str = "p", field_target: str = "target_success") -> int:
    """Smallest k >= 1 with task_success(p, k, steps) >= target.

    Raises InvalidArgument (naming the field) for p outside (0.5, 1), target
    outside (0, 1) or steps < 1.
    """
    _check_p(p, field_p)
    if not 0.0 < target < 1.0:
        raise InvalidArgument(field_target, f"must be in (0, 1), got {target}")
    if steps < 1:
        raise InvalidArgument("steps", f"must be >= 1, got {steps}")
    bound = math.expm1(-math.log(target) / steps)
    k = max(1, math.ceil(math.log(bound) / math.log((1.0 - p) / p)))
    # Guard the closed form against rounding at the boundary.
    while k > 1 and task_success(p, k - 1, steps) >= target:
        k -= 1
    while task_success(p, k, steps) < target:
        k += 1
    return k


def expected_votes_per_step(p: float, k: int) -> float:
    """Expected valid samples until one of two answers leads by k (gambler's ruin duration)."""
    _check_p(p)
    q = 1.0 - p
    rk = (q / p) ** k
    return k / (p - q) * (1.0 - rk) / (1.0 + rk)


def expected_samples_per_step(p: float, k: int, red_flag_rate: float = 0.0) -> float:
    """Expected samples drawn per step, red-flagged ones included."""
    if not 0.0 <= red_flag_rate < 1.0:
        raise InvalidArgument("red_flag_rate", f"must be in [0, 1), got {red_flag_rate}")
    return expected_votes_per_step(p, k) / (1.0 - red_flag_rate)


def estimate_p(correct: int, valid: int, z: float = 1.96) -> tuple[float, float, float]:
    """Point estimate of p from a calibration sample, with its Wilson interval (lo, hi).

    ``valid`` counts the samples that were not red-flagged; raises
    InvalidArgument when it is 0.
    """
    if valid <= 0:
        raise InvalidArgument("calibration", "no valid calibration samples (all red-flagged or none drawn)")
    if not 0 <= correct <= valid:
        raise InvalidArgument("calibration", f"correct ({correct}) must be in 0..valid ({valid})")
    ph = correct / valid
    denom = 1 + z * z / valid
    centre = (ph + z * z / (2 * valid)) / denom
    half = z * math.sqrt(ph * (1 - ph) / valid + z * z / (4 * valid * valid)) / denom
    return ph, max(0.0, centre - half), min(1.0, centre + half)


def p_lower_bound(correct: int, valid: int, confidence: float = 0.95) -> float:
    """One-sided Wilson lower bound on p at ``confidence``; in [0, 1), 0 when nothing is correct.

    P(true p < bound) <= 1 - confidence for independent samples (approximately;
    Wilson's interval keeps near-nominal coverage even at c = n). Raises
    InvalidArgument for no valid samples, c outside 0..n, or a confidence
    outside (0.5, 1).
    """
    if not 0.5 < confidence < 1.0:
        raise InvalidArgument("voting.calibration_confidence", f"must be in (0.5, 1), got {confidence}")
    if valid <= 0:
        raise InvalidArgument("calibration", "no valid calibration samples (all red-flagged or none drawn)")
    if not 0 <= correct <= valid:
        raise InvalidArgument("calibration", f"correct ({correct}) must be in 0..valid ({valid})")
    z = NormalDist().inv_cdf(confidence)
    ph = correct / valid
    denom = 1 + z * z / valid
    centre = (ph + z * z / (2 * valid)) / denom
    half = z * math.sqrt(ph * (1 - ph) / valid + z * z / (4 * valid * valid)) / denom
    return max(0.0, centre - half)


def samples_for_bound(p_floor: float, confidence: float = 0.95) -> int:
    """Fewest valid samples, all correct, whose lower bound exceeds ``p_floor`` (n > z^2 p / (1 - p))."""
    if not 0.0 < p_floor < 1.0:
        raise InvalidArgument("p_floor", f"must be in (0, 1), got {p_floor}")
    z = NormalDist().inv_cdf(confidence)
    return math.floor(z * z * p_floor / (1.0 - p_floor)) + 1
