"""Calibration: map a classifier's raw score to a probability that means what it says.

Fitting is scikit-learn's; applying a fitted map is a closed form, so a model
directory's JSON holds it and the router needs no estimator object per call.

- ``platt``: p = sigmoid(a·s + b). Fitted by ``LogisticRegression`` (no
  penalty, L-BFGS) on the one score with Platt's (1999) smoothed targets
  t+ = (N+ + 1)/(N+ + 2), t- = 1/(N- + 2): every row enters twice, as a
  positive with weight t and as a negative with weight 1 - t, which is the
  log likelihood of the soft target exactly.
- ``isotonic``: ``IsotonicRegression`` (pool-adjacent-violators) on the
  scores; the map is its fitted thresholds, linearly interpolated between
  them (what ``IsotonicRegression.predict`` does) and clipped to [1e-3, 1 - 1e-3].
- ``none``: the sigmoid of the raw score.

Also ``expected_calibration_error``, the calibration metric classifiers report
and training evaluates; it lives here so both may import it without a cycle.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

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
        """Fit ``method`` on raw ``scores`` (n,) against boolean ``labels`` (n,); ValueError on an unknown method."""
        if method not in METHODS:
            raise ValueError(f"unknown calibration {method!r}; known: {', '.join(METHODS)}")
        scores = np.asarray(scores, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.float64) > 0.5
        if method == "platt":
            return cls("platt", *_platt(scores, labels))
        if method == "isotonic":
            xs, ys = _isotonic(scores, labels)
            return cls("isotonic", xs=list(xs), ys=list(ys))
        return cls(method)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "platt":
            return expit(self.a * scores + self.b)
        if self.method == "isotonic":
            return np.clip(np.interp(scores, self.xs, self.ys), _EPS, 1 - _EPS)
        return expit(scores)

    def to_dict(self) -> dict:
        return {"method": self.method, "a": self.a, "b": self.b, "xs": self.xs.tolist(), "ys": self.ys.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibrator":
        return cls(d["method"], d.get("a", 1.0), d.get("b", 0.0), d.get("xs"), d.get("ys"))


def _platt(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    from ponder.router.classifiers.threads import one_thread

    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:  # one class: a constant at the smoothed rate
        t = (n_pos + 1) / (len(y) + 2)
        return 0.0, float(np.log(t / (1 - t)))
    t = np.where(y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    x = np.r_[s, s][:, None]
    target = np.r_[np.ones(len(s)), np.zeros(len(s))]
    weight = np.r_[t, 1 - t]
    m = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000, tol=1e-10)
    with one_thread():
        m.fit(x, target, sample_weight=weight)
    return float(m.coef_[0, 0]), float(m.intercept_[0])


def _isotonic(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(s, y.astype(np.float64))
    return np.asarray(iso.X_thresholds_, dtype=np.float64), np.asarray(iso.y_thresholds_, dtype=np.float64)


def expected_calibration_error(prob: np.ndarray, label: np.ndarray, bins: int = 10) -> float:
    """ECE: bin-weighted mean |mean prediction - observed rate| over equal-width bins; in [0, 1].

    ValueError on no rows.
    """
    prob = np.clip(np.asarray(prob, dtype=np.float64), 0.0, 1.0)
    label = np.asarray(label, dtype=np.float64)
    if len(prob) == 0:
        raise ValueError("expected calibration error of no rows")
    idx = np.minimum((prob * bins).astype(np.int64), bins - 1)
    p_sum = np.bincount(idx, weights=prob, minlength=bins)
    y_sum = np.bincount(idx, weights=label, minlength=bins)
    return float(np.sum(np.abs(p_sum - y_sum)) / len(prob))
