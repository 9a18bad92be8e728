"""Accuracy models of the strategies: expected P(correct) of a plan from p, the
probability that one plain sample of its pool is correct.

- majority vote over n samples, modelled as n independent draws each right with
  probability p and a binary vote (all wrong answers agree — pessimistic), ties
  broken by a coin: Σ_{k>n/2} C(n,k) p^k (1−p)^(n−k) + ½·C(n,n/2) (p(1−p))^(n/2)
  for even n. Below p = ½ voting hurts.
- thinking with a budget of T tokens: logit(p_T) = logit(p) + g · log2(1 + T / ref),
  with g the pool's thinking gain (fitted from feedback, else a prior).
"""
from __future__ import annotations

import math


def majority_vote_accuracy(p: float, n: int) -> float:
    """P(the majority of n independent binary votes is right), ties split evenly; in [0, 1]."""
    if n <= 1:
        return p
    p = min(max(p, 0.0), 1.0)
    total = 0.0
    for k in range(n // 2 + 1, n + 1):
        total += math.comb(n, k) * p**k * (1 - p) ** (n - k)
    if n % 2 == 0:
        total += 0.5 * math.comb(n, n // 2) * (p * (1 - p)) ** (n // 2)
    return min(1.0, max(0.0, total))


def shift_logit(p: float, delta: float) -> float:
    """p moved by ``delta`` on the logit scale (p clipped to [1e-6, 1 − 1e-6] first); in (0, 1)."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return 1 / (1 + math.exp(-(math.log(p / (1 - p)) + delta)))


def thinking_accuracy(p: float, budget: int, gain: float, ref_tokens: int) -> float:
    """P(correct) after thinking ``budget`` tokens with logit gain ``gain`` per doubling of 1 + T/ref; in (0, 1)."""
    return shift_logit(p, gain * math.log2(1 + budget / ref_tokens))
