"""Calibration: map a classifier's raw score to a probability that means what it says.

- ``platt``: p = sigmoid(a·s + b), a and b by Newton's method on the log loss
  with Platt's (1999) smoothed targets.
- ``isotonic``: pool-adjacent-violators on the scores sorted ascending; the
  map is the step function through the block means, linearly interpolated
  between block centres and clipped to [1e-3, 1 - 1e-3].
- ``none``: the sigmoid of the raw score.

Calibrators serialise to plain dicts for a model directory's JSON.
"""
from __future__ import annotations

import numpy as np

from ponder.router.classifiers.optim import sigmoid

METHODS = ("platt", "isotonic", "none")
_EPS = 1e-3


class Calibrator:
    def __init__(self, method: str = "none", a: float = 1.0, b: float = 0.0,
                 xs: list[float] | None = None, ys: list[float] | None = None):
        if method not in METHODS:
            raise ValueError(f"unknown calibration {method!r}; known: {', '.join(METHODS)}")
        self.method, self.a, self.b = method, a, b
        self.xs = np.asarray(xs if xs is not None else [], dtype=np.float64)
        self.ys = np.asarray(ys if ys is not None else [], dtype=np.float64)

    @classmethod
    def fit(cls, method: str, scores: np.ndarray, labels: np.ndarray) -> "Calibrator":
        scores = np.asarray(scores, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.float64)
        if method == "platt":
            return cls("platt", *_platt(scores, labels))
        if method == "isotonic":
            xs, ys = _pav(scores, labels)
            return cls("isotonic", xs=list(xs), ys=list(ys))
        return cls(method)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "platt":
            return sigmoid(self.a * scores + self.b)
        if self.method == "isotonic":
            return np.clip(np.interp(scores, self.xs, self.ys), _EPS, 1 - _EPS)
        return sigmoid(scores)

    def to_dict(self) -> dict:
        return {"method": self.method, "a": self.a, "b": self.b, "xs": self.xs.tolist(), "ys": self.ys.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibrator":
        return cls(d["method"], d.get("a", 1.0), d.get("b", 0.0), d.get("xs"), d.get("ys"))


def _platt(s: np.ndarray, y: np.ndarray, iters: int = 100) -> tuple[float, float]:
    """Newton's method with step halving on the log loss of sigmoid(a·s + b)."""
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    t = np.where(y > 0.5, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(a: float, b: float) -> float:
        z = a * s + b
        return float(np.sum(np.logaddexp(0.0, z) - t * z))

    a, b = 0.0, float(np.log((n_pos + 1) / (n_neg + 1)))
    f = loss(a, b)
    for _ in range(iters):
        p = sigmoid(a * s + b)
        r = p - t
        w = np.maximum(p * (1 - p), 1e-12)
        g = np.array([r.dot(s), r.sum()])
        h = np.array([[w.dot(s * s), w.dot(s)], [w.dot(s), w.sum()]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        k = 1.0
        while k > 1e-8:
            a_new, b_new = a - k * step[0], b - k * step[1]
            f_new = loss(a_new, b_new)
            if f_new <= f:
                break
            k *= 0.5
        else:
            break
        done = abs(f - f_new) <= 1e-12 * max(1.0, abs(f))
        a, b, f = a_new, b_new, f_new
        if done:
            break
    return float(a), float(b)


def _pav(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    # Tied scores form one initial block.
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    sums = list(np.add.reduceat(y, starts))
    counts = list(np.diff(np.r_[starts, len(s)]).astype(np.float64))
    xsum = list(np.add.reduceat(s, starts))
    bs: list[float] = []
    bc: list[float] = []
    bx: list[float] = []
    for ys_, c, xs_ in zip(sums, counts, xsum):
        bs.append(ys_)
        bc.append(c)
        bx.append(xs_)
        while len(bs) > 1 and bs[-2] / bc[-2] >= bs[-1] / bc[-1]:
            ys_, c, xs_ = bs.pop(), bc.pop(), bx.pop()
            bs[-1] += ys_
            bc[-1] += c
            bx[-1] += xs_
    centres = np.array(bx) / np.array(bc)
    means = np.array(bs) / np.array(bc)
    return centres, means
