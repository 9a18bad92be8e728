"""L-BFGS for smooth convex losses (numpy only), used to fit the linear models."""
from __future__ import annotations

from typing import Callable

import numpy as np


def lbfgs(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, max_iter: int = 200,
          memory: int = 10, tol: float = 1e-6) -> np.ndarray:
    """Minimise ``fun`` (returns value and gradient) from ``x0``.

    Two-loop recursion with an Armijo backtracking line search; stops after
    ``max_iter`` iterations or when the gradient's max-norm drops below ``tol``
    times max(1, |f|). Returns the last iterate.
    """
    x = x0.astype(np.float64).copy()
    f, g = fun(x)
    s_hist: list[np.ndarray] = []
    y_hist: list[np.ndarray] = []
    for _ in range(max_iter):
        if np.max(np.abs(g)) <= tol * max(1.0, abs(f)):
            break
        q = g.copy()
        alphas = []
        for s, y in zip(reversed(s_hist), reversed(y_hist)):
            a = s.dot(q) / y.dot(s)
            alphas.append(a)
            q -= a * y
        if s_hist:
            q *= s_hist[-1].dot(y_hist[-1]) / y_hist[-1].dot(y_hist[-1])
        else:
            q /= max(1.0, np.linalg.norm(g))
        for (s, y), a in zip(zip(s_hist, y_hist), reversed(alphas)):
            b = y.dot(q) / y.dot(s)
            q += s * (a - b)
        d = -q
        slope = g.dot(d)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            s_hist.clear()
            y_hist.clear()
            d = -g / max(1.0, np.linalg.norm(g))
            slope = g.dot(d)
        step = 1.0
        for _ls in range(30):
            x_new = x + step * d
            f_new, g_new = fun(x_new)
            if f_new <= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        s, y = x_new - x, g_new - g
        if s.dot(y) > 1e-12:
            s_hist.append(s)
            y_hist.append(y)
            if len(s_hist) > memory:
                s_hist.pop(0)
                y_hist.pop(0)
        converged = abs(f - f_new) <= 1e-10 * max(1.0, abs(f))
        x, f, g = x_new, f_new, g_new
        if converged:
            break
    return x


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def log1pexp(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)
