"""Routing curves: the expected accuracy of a weak/strong router at every strong-call share, and APGR.

The primitives under ``ponder.router.training.metrics`` (which re-exports them
with CPT, ECE and the N-model cost curve), kept here so the classifiers'
no-harm guard can score orderings without importing the training layer. See
that module's docstring for the definitions; all raise MetricUndefined on
malformed outcomes or when acc_strong <= acc_weak.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ponder.common.errors import FailedPrecondition


class MetricUndefined(FailedPrecondition):
    def __init__(self, detail: str):
        super().__init__(f"router metric undefined: {detail}")


@dataclasses.dataclass(frozen=True)
class Curve:
    """Accuracy ``acc[k]`` when the share ``x[k]`` of prompts goes to the strong model."""

    x: np.ndarray
    acc: np.ndarray
    acc_weak: float
    acc_strong: float

    def at(self, share: float) -> float:
        return float(np.interp(share, self.x, self.acc))


def _check(weak: np.ndarray, strong: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    weak = np.asarray(weak, dtype=np.float64)
    strong = np.asarray(strong, dtype=np.float64)
    if weak.shape != strong.shape or weak.ndim != 1:
        raise MetricUndefined(f"weak and strong outcomes must be 1-D of one length, got {weak.shape} and {strong.shape}")
    if len(weak) == 0:
        raise MetricUndefined("no rows")
    return weak, strong


def router_curve(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> Curve:
    """Expected accuracy at each strong share k/n when the highest scores go strong first."""
    weak, strong = _check(weak, strong)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != weak.shape:
        raise MetricUndefined(f"{len(scores)} scores for {len(weak)} rows")
    n = len(weak)
    order = np.argsort(-scores, kind="stable")
    s_sorted = scores[order]
    gain = (strong - weak)[order]
    # Replace each gain by its tie group's mean: the expectation over random order within the group.
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    sums = np.add.reduceat(gain, starts)
    sizes = np.diff(np.r_[starts, n])
    gain = np.repeat(sums / sizes, sizes)
    acc = (weak.sum() + np.r_[0.0, np.cumsum(gain)]) / n
    acc[-1] = strong.mean()  # exact at x = 1 despite rounding in the cumulative sum
    return Curve(x=np.arange(n + 1) / n, acc=acc, acc_weak=float(weak.mean()), acc_strong=float(strong.mean()))


def random_curve(weak: np.ndarray, strong: np.ndarray) -> Curve:
    weak, strong = _check(weak, strong)
    n = len(weak)
    x = np.arange(n + 1) / n
    aw, as_ = float(weak.mean()), float(strong.mean())
    return Curve(x=x, acc=aw + x * (as_ - aw), acc_weak=aw, acc_strong=as_)


def oracle_curve(weak: np.ndarray, strong: np.ndarray) -> Curve:
    weak, strong = _check(weak, strong)
    return router_curve(strong - weak, weak, strong)


def _gap(c: Curve) -> float:
    gap = c.acc_strong - c.acc_weak
    if gap <= 0:
        raise MetricUndefined(
            f"strong accuracy {c.acc_strong:.4f} is not above weak accuracy {c.acc_weak:.4f}; "
            "check which column is --strong"
        )
    return gap


def pgr(c: Curve, share: float) -> float:
    return (c.at(share) - c.acc_weak) / _gap(c)


def apgr(c: Curve) -> float:
    area = float(np.sum((c.acc[1:] + c.acc[:-1]) * np.diff(c.x)) / 2.0)
    return (area - c.acc_weak) / _gap(c)
