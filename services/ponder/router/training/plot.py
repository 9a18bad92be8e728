"""Accuracy against strong-call share: router, random and oracle curves (matplotlib, imported lazily)."""
from __future__ import annotations

import pathlib

import numpy as np

from ponder.common.errors import DependencyMissing
from ponder.router.training import metrics as M


def plot_curves(path: str | pathlib.Path, curves: dict[str, M.Curve], title: str = "") -> pathlib.Path:
    """Draw each named curve (e.g. router, random, oracle) plus the weak/strong levels into a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DependencyMissing("matplotlib", "pip install matplotlib (or the project's dev extra)") from None
    styles = {"random": ":", "oracle": "--"}
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    any_curve = next(iter(curves.values()))
    for name, c in curves.items():
        # Thin very long curves: a few thousand points draw the same line.
        step = max(1, len(c.x) // 2000)
        x, y = c.x[::step], c.acc[::step]
        if x[-1] != c.x[-1]:
            x, y = np.r_[x, c.x[-1]], np.r_[y, c.acc[-1]]
        label = name
        if c.acc_strong > c.acc_weak:
            label += f" (APGR {M.apgr(c):.3f})"
        ax.plot(100 * x, 100 * y, styles.get(name, "-"), label=label)
    ax.axhline(100 * any_curve.acc_weak, color="grey", lw=0.8)
    ax.axhline(100 * any_curve.acc_strong, color="grey", lw=0.8)
    ax.set_xlabel("calls to the strong model (%)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "router accuracy vs strong-call share")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    out = pathlib.Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
