"""One PNG per section, drawn from a benchmark's JSON alone (matplotlib, Agg backend, imported lazily).

Each function takes the parsed JSON and the PNG path, writes the file and
returns nothing; a missing or ill-shaped series raises KeyError, TypeError or
ValueError, which ``build`` reports with the JSON file's name.
"""
from __future__ import annotations

import math
import pathlib

import numpy as np

from ponder.common.errors import DependencyMissing


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DependencyMissing("matplotlib", "pip install 'ponder[report]' (or matplotlib)") from None
    return plt


def _save(fig, path: pathlib.Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    # No timestamp in the PNG's metadata, so a rerun on the same JSON writes the same bytes.
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def router_curves(d: dict, path: pathlib.Path) -> None:
    """Accuracy against the share of strong-model calls (router, random, oracle), via the router's own plotter."""
    _pyplot()
    from ponder.router.training import metrics as M
    from ponder.router.training.plot import plot_curves

    c = d["curves"]
    curves = {}
    for name in ("router", "random", "oracle"):
        x, acc = np.asarray(c[name]["strong_share"], float), np.asarray(c[name]["accuracy"], float)
        if x.shape != acc.shape or x.ndim != 1 or len(x) < 2:
            raise ValueError(f"curves.{name}: strong_share and accuracy must be lists of one length >= 2")
        curves[name] = M.Curve(x, acc, float(c["acc_weak"]), float(c["acc_strong"]))
    title = f"MMLU, {d.get('folds', '?')}-fold grouped by subject, {d.get('n', '?')} prompts (out-of-fold)"
    plot_curves(path, curves, title=title)


def budget_convergence(d: dict, path: pathlib.Path) -> None:
    """Running mean cost per request against the target (top) and the controller's λ (bottom)."""
    plt = _pyplot()
    s = d["series"]
    x, cost, lam = (np.asarray(s[k], float) for k in ("request", "running_mean_compute_units", "lambda_per_cu"))
    if not (x.shape == cost.shape == lam.shape) or x.ndim != 1 or len(x) < 2:
        raise ValueError("series: request, running_mean_compute_units and lambda_per_cu must be lists of one length >= 2")
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(6.4, 5.2), dpi=120, sharex=True, height_ratios=(2, 1))
    ax.plot(x, cost, label="running mean cost")
    ax.axhline(float(d["target_compute_units"]), color="grey", ls=":", label="target")
    ax.set_ylabel("compute units per request")
    ax.set_title(f"dual-ascent budget controller, {d['requests']} requests")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    ax2.plot(x, lam, color="tab:orange", lw=0.8)
    ax2.set_ylabel("λ per compute unit")
    ax2.set_xlabel("request")
    ax2.grid(alpha=0.3)
    _save(fig, path)


def latency_cdfs(d: dict, path: pathlib.Path) -> None:
    """Latency CDFs of direct pool calls and calls through the router, at concurrency 1 and 16."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    for ax, key in zip(axes, ("concurrency_1", "concurrency_16")):
        cdf = d[key]["cdf_ms"]
        labels = {"direct": "client -> pool", "current": "client -> router -> pool",
                  "baseline": "client -> router (baseline) -> pool"}
        for name, q in cdf.items():
            q = np.asarray(q, float)
            if q.ndim != 1 or len(q) < 2:
                raise ValueError(f"{key}.cdf_ms.{name}: needs a list of at least two quantiles")
            ax.plot(q, np.linspace(0, 100, len(q)), label=labels.get(name, name))
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("requests at or below (%)")
        ax.set_title(key.replace("_", " "))
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="lower right")
    _save(fig, path)


def voting_cost(d: dict, path: pathlib.Path) -> None:
    """Samples used against steps (log-log): measured, the formula, and c · s ln s fitted at the largest run."""
    plt = _pyplot()
    curve = d["cost_curve"]
    if not isinstance(curve, list) or not curve:
        raise ValueError("cost_curve: needs a non-empty list of {steps, samples, theory_samples}")
    s = [float(c["steps"]) for c in curve]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    ax.loglog(s, [c["samples"] for c in curve], "o-", label="measured samples")
    ax.loglog(s, [c["theory_samples"] for c in curve], "x--", label="theory s · E[samples | k(s)]")
    c0 = curve[-1]["samples"] / (s[-1] * math.log(s[-1]))
    ax.loglog(s, [c0 * x * math.log(x) for x in s], ":", label="c · s ln s")
    ax.set_xlabel("steps s")
    ax.set_ylabel("samples")
    ax.set_title(f"{d['task']}, {d.get('sampler', '')}")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    _save(fig, path)
