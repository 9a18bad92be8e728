"""Test-time compute allocation measured on outcome tables: uniform best-of-N against per-question plans.

Everything here is a pure function of a table's rows (``samples.draw_table``).

- ``vote_accuracy``: for each question, the expected accuracy of a plurality
  vote over n of its M samples drawn without replacement, for n = 1..M,
  averaged over ``permutations`` random orders (every prefix of a random order
  is a random subset). Unparseable samples do not vote; no votes is wrong; a
  tie counts 1/t when the right answer is one of the t tied answers.
- ``choose_samples``: the ``difficulty`` policy's rule for one question, given
  P(one sample right) = p: n maximising majority_vote_accuracy(p, n) - λ·n
  over n in 1..M (ties to the smaller n). Below p = 1/2 that is n = 1.
- ``allocation_curve``: for each λ of a grid, the mean n and the mean realised
  accuracy (``vote_accuracy`` at each question's n) over the table.
- ``hindsight_curve``: the same with each n chosen on the measured vote curve
  (an upper bound: it knows how the votes turn out).
- ``uniform_curve``: (N, mean vote accuracy at N) for N = 1..M.
- ``samples_at_accuracy``: the least mean n on a curve reaching an accuracy,
  interpolating linearly between neighbouring points of the curve's lower hull
  in n; None when the curve never reaches it.
- ``think_choice``: the policy's single-vs-think rule per question.
"""
from __future__ import annotations

import math
import random
from typing import Callable, Sequence

import numpy as np

from ponder.router.strategies.accuracy import majority_vote_accuracy, thinking_accuracy


def vote_accuracy(answers: Sequence, truth, permutations: int = 400, seed: int = 0) -> np.ndarray:
    """Shape (M,): entry n-1 is the expected plurality-vote accuracy over n random samples; in [0, 1]."""
    m = len(answers)
    if m == 0:
        raise ValueError("no samples")
    rng = random.Random(seed)
    acc = np.zeros(m)
    idx = list(range(m))
    for _ in range(permutations):
        rng.shuffle(idx)
        counts: dict = {}
        for n, i in enumerate(idx, start=1):
            a = answers[i]
            if a is not None:
                counts[a] = counts.get(a, 0) + 1
            if counts:
                top = max(counts.values())
                tied = [k for k, v in counts.items() if v == top]
                if truth in tied:
                    acc[n - 1] += 1.0 / len(tied)
    return acc / permutations


def choose_samples(p: float, max_n: int, lam: float, table: np.ndarray | None = None) -> int:
    """The policy's n for one question (see module docstring); ``table`` caches majority_vote_accuracy(p, n)."""
    best_n, best = 1, -math.inf
    for n in range(1, max_n + 1):
        a = table[n - 1] if table is not None else majority_vote_accuracy(p, n)
        score = a - lam * n
        if score > best + 1e-12:
            best_n, best = n, score
    return best_n


def mv_table(p: np.ndarray, max_n: int) -> np.ndarray:
    """majority_vote_accuracy for every question's p and n = 1..max_n, shape (Q, max_n)."""
    return np.array([[majority_vote_accuracy(float(x), n) for n in range(1, max_n + 1)] for x in p])


def allocation_curve(p_pred: np.ndarray, vacc: np.ndarray, lambdas: Sequence[float]) -> list[tuple[float, float, float]]:
    """(λ, mean samples, mean realised accuracy) per λ, for plans chosen from predicted p."""
    q, m = vacc.shape
    tab = mv_table(p_pred, m)
    out = []
    for lam in lambdas:
        ns = np.array([choose_samples(float(p_pred[i]), m, lam, tab[i]) for i in range(q)])
        out.append((float(lam), float(ns.mean()), float(vacc[np.arange(q), ns - 1].mean())))
    return out


def hindsight_curve(vacc: np.ndarray, lambdas: Sequence[float]) -> list[tuple[float, float, float]]:
    """Like ``allocation_curve`` but each n maximises the question's *measured* vote accuracy - λ·n:
    an upper bound no predictor reaches (it knows how plurality votes turn out, not only p)."""
    q, m = vacc.shape
    out = []
    for lam in lambdas:
        ns = np.array([int(np.argmax(vacc[i] - lam * np.arange(1, m + 1))) + 1 for i in range(q)])
        out.append((float(lam), float(ns.mean()), float(vacc[np.arange(q), ns - 1].mean())))
    return out


def uniform_curve(vacc: np.ndarray) -> list[tuple[int, float]]:
    return [(n, float(vacc[:, n - 1].mean())) for n in range(1, vacc.shape[1] + 1)]


def lower_hull(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points (cost, accuracy) that no cheaper-or-equal point beats: cost ascending, accuracy strictly rising."""
    out: list[tuple[float, float]] = []
    for c, a in sorted(points):
        if out and c == out[-1][0]:
            if a > out[-1][1]:
                out[-1] = (c, a)
            continue
        if not out or a > out[-1][1]:
            out.append((c, a))
    return out


def samples_at_accuracy(points: Sequence[tuple[float, float]], target: float) -> float | None:
    """Least cost reaching ``target`` on the curve, linear between hull points; None when out of reach."""
    hull = lower_hull(points)
    for j, (c, a) in enumerate(hull):
        if a >= target - 1e-12:
            if j == 0:
                return c
            c0, a0 = hull[j - 1]
            return c0 + (target - a0) / (a - a0) * (c - c0)
    return None


def accuracy_at_samples(points: Sequence[tuple[float, float]], cost: float) -> float | None:
    """Best accuracy the curve reaches at mean cost <= ``cost`` (linear between hull points)."""
    hull = lower_hull(points)
    if not hull or cost < hull[0][0] - 1e-12:
        return None
    best = hull[0][1]
    for (c0, a0), (c1, a1) in zip(hull, hull[1:]):
        if cost >= c1:
            best = a1
        elif cost > c0:
            best = a0 + (cost - c0) / (c1 - c0) * (a1 - a0)
            break
    return best


def think_choice(p_pred: float, budget: int, gain: float, ref_tokens: int, lam: float,
                 cost_plain: float, cost_think: float) -> bool:
    """True when thinking's expected accuracy, less λ·cost, beats answering directly (the policy's rule)."""
    return thinking_accuracy(p_pred, budget, gain, ref_tokens) - lam * cost_think > p_pred - lam * cost_plain


def cross_val_predict(texts: Sequence[str], labels: Sequence[Sequence[bool]], folds: int, seed: int,
                      fit_predict: Callable[[list[str], list[bool], list[str]], np.ndarray]) -> np.ndarray:
    """Out-of-fold P(correct) per question: each fold's questions are scored by a model fitted without them.

    ``labels[i]`` holds question i's per-sample outcomes; folds split questions,
    never samples of one question. ``fit_predict(train_texts, train_labels,
    test_texts)`` trains on one row per sample.
    """
    q = len(texts)
    if folds < 2 or folds > q:
        raise ValueError(f"folds must be in 2..{q}, got {folds}")
    order = list(range(q))
    random.Random(seed).shuffle(order)
    out = np.zeros(q)
    for f in range(folds):
        test = order[f::folds]
        held = set(test)
        tr_t, tr_y = [], []
        for i in range(q):
            if i not in held:
                tr_t += [texts[i]] * len(labels[i])
                tr_y += [bool(x) for x in labels[i]]
        out[test] = fit_predict(tr_t, tr_y, [texts[i] for i in test])
    return out
