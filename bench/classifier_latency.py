"""Latency of the default classifier (hashed-gbt; ``--classifier`` for another) on one CPU core.

Trains on synthetic prompts (the weights' values do not change the cost;
tree models keep all ``n_trees`` rounds, the most a trained model can have),
then times ``predict_proba`` for single prompts of 100, 1,000 and 8,000 tokens
(4 characters per token, the catalog's estimate). Prints one JSON object with
p50/p99 in milliseconds per size; ``--plot PNG`` draws them. For a tree
model, ``library_tokens_1000`` times the same prompts scored through
scikit-learn's own ``decision_function`` on the same features instead of the
flattened trees (the reason the flattened copy exists).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

WORDS = ("the of and to in is that for it as with was on be by this are or at from which not but have "
         "compute 12 3.5 x + y = 42 ( ) ; : , . ? whereas because although integral matrix protein court").split()


def prompt(tokens: int, rng: np.random.Generator) -> str:
    out, n = [], 0
    while n < tokens * 4:
        w = WORDS[rng.integers(len(WORDS))]
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[: tokens * 4]


def library_latency(clf, samples: list[str], repeats: int) -> dict:
    """p50/p99 ms of one prompt through the features and the library's ``decision_function`` per target."""
    from ponder.router.classifiers.features import extended_matrix

    x = extended_matrix(samples[:50] * 4)
    y = np.arange(len(x)) % 2 == 0
    models = [clf._fit_trees(x, y, len(m.feature)) for m in clf.models]
    times = np.empty(repeats)
    for i in range(repeats):
        s = samples[i % len(samples)]
        t0 = time.perf_counter()
        row = clf.dense([s])
        for m in models:
            m.decision_function(row)
        times[i] = time.perf_counter() - t0
    return {"p50_ms": round(float(np.percentile(times, 50)) * 1e3, 4),
            "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 4), "n": repeats,
            "note": "features + scikit-learn decision_function per target, no n-gram part"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plot", metavar="PNG")
    ap.add_argument("--repeats", type=int, default=2000)
    ap.add_argument("--classifier", default="hashed-gbt")
    ap.add_argument("--params", default="{}", help="classifier params as JSON (e.g. '{\"cache_rows\": 0}' so "
                    "minilm-gbt encodes every prompt instead of remembering it)")
    ap.add_argument("--sizes", default="100,1000,8000", help="prompt sizes in tokens")
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    from ponder.router.classifiers import build_classifier

    rng = np.random.default_rng(0)
    texts = [prompt(int(rng.integers(20, 400)), rng) for _ in range(400)]
    labels = rng.random(400) < 0.6
    probe = build_classifier(args.classifier, {})
    params = {"select_trees": False} if "select_trees" in type(probe.params).model_fields else {}
    params.update(json.loads(args.params))
    from ponder.router.classifiers import gain_target
    from ponder.router.training.evaluate import DEFAULT_GAIN_HEADS

    strong = labels | (rng.random(400) < 0.5)
    targets = {"weak": labels, "strong": strong}
    if DEFAULT_GAIN_HEADS:  # what `ponder router train` fits: the two gain heads besides the pools
        targets.update({gain_target("weak", "strong"): strong & ~labels, gain_target("strong", "weak"): labels & ~strong})
    clf = build_classifier(args.classifier, params).fit(texts, targets)
    from ponder.router.classifiers.guard import LengthGuard, fit_length_prior, log_length
    from ponder.router.training.evaluate import DEFAULT_GUARD

    if DEFAULT_GUARD:  # what `ponder router train` adds; β in (0, 1) so the blend runs (its value costs nothing)
        prior = fit_length_prior(log_length(texts), labels.astype(float), strong.astype(float))
        clf.guard = LengthGuard(0.5, prior, "weak", "strong")
    out: dict = {"classifier": clf.name, "cores": 1, "targets": len(clf.targets), "guard": clf.guard is not None}
    out["params"] = params
    sizes = [int(x) for x in args.sizes.split(",")]
    for tokens in sizes:
        samples = [prompt(tokens, rng) for _ in range(20)]
        reps = args.repeats if tokens < 8000 else max(200, args.repeats // 5)
        for s in samples[:3]:
            clf.predict_proba([s])
        times = np.empty(reps)
        for i in range(reps):
            s = samples[i % len(samples)]
            t0 = time.perf_counter()
            clf.predict_proba([s])
            times[i] = time.perf_counter() - t0
        out[f"tokens_{tokens}"] = {"p50_ms": round(float(np.percentile(times, 50)) * 1e3, 4),
                                   "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 4), "n": reps}
    if hasattr(clf, "_fit_trees") and args.classifier == "hashed-gbt":
        out["library_tokens_1000"] = library_latency(clf, [prompt(1000, rng) for _ in range(20)], args.repeats)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
        for q in ("p50_ms", "p99_ms"):
            ax.plot(sizes, [out[f"tokens_{n}"][q] for n in sizes], "o-", label=q)
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("prompt tokens")
        ax.set_ylabel("ms per prompt (1 core)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
        out["plot"] = args.plot
    out["target_p50_ms_at_1000"] = 1.0
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
