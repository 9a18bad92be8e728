"""Budget controller replay: 10,000 requests from the shared MMLU outcome tables.

Two pools: ``small`` answers like the weak model of the table, ``large`` like
the strong one and costs 10x per token. Each request's P(correct) per pool
comes from a classifier that never saw the request's subject (5-fold grouped
out-of-fold predictions). The ``difficulty`` policy plans each request with
λ from the dual-ascent controller, the realised cost is the plan's cost, and
the answer is right when the table says that pool was right. ``uniform`` is a
coin-flip policy with the same mean cost. Prints one JSON object;
``--plot PNG`` draws the running mean cost against the target.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import MMLU_DIR as DATA, MMLU_STRONG as STRONG, MMLU_WEAK as WEAK, spread, thin  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plot", metavar="PNG")
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--target-share", type=float, default=0.3,
                    help="target cost as weak + share x (strong - weak) of the mean per-request costs")
    ap.add_argument("--step", type=float, default=0.02)
    ap.add_argument("--max-files", type=int, default=0,
                    help="use this many of the tables, evenly spread over the sorted list (0: all; quick runs)")
    args = ap.parse_args(argv)

    from ponder.common.config import parse_config
    from ponder.router.budget import DualAscent
    from ponder.router.classifiers.base import Classifier
    from ponder.router.catalog import PoolCatalog
    from ponder.router.policies.difficulty import DifficultyPolicy
    from ponder.router.training.evaluate import cross_validate
    from ponder.router.training.outcomes import load_outcomes
    from ponder.router.types import Request

    table = load_outcomes(spread(sorted(DATA.glob("*.csv")), args.max_files), [WEAK, STRONG])
    cv = cross_validate(table, WEAK, STRONG, 5, True, keep_scores=True)
    probs = np.column_stack([cv["oof_probs"][WEAK], cv["oof_probs"][STRONG]])

    class OutOfFold(Classifier):
        """Looks up each prompt's out-of-fold probabilities by row."""

        name = "out-of-fold"

        def __init__(self):
            super().__init__(params=None)
            self.targets = ["small", "large"]
            self.row = 0

        def fit(self, texts, labels):
            return self

        def raw_scores(self, texts):
            raise NotImplementedError

        def predict_proba(self, texts):
            return probs[[self.row]]

        def save_arrays(self, directory):
            pass

        def load_arrays(self, directory):
            pass

    cfg = parse_config({
        "pools": [
            {"name": "small", "tier": "small", "cost": {"prompt_token_cu": 0.1, "output_token_cu": 1.0}},
            {"name": "large", "tier": "reasoning", "cost": {"prompt_token_cu": 1.0, "output_token_cu": 10.0}},
        ],
        "routing": {"policy": {"name": "difficulty"}, "strategies": ["single"]},
    })
    catalog = PoolCatalog(cfg)
    clf = OutOfFold()
    policy = DifficultyPolicy(DifficultyPolicy.Params(), catalog, clf)

    rng = np.random.default_rng(0)
    rows = rng.choice(len(table), size=min(args.requests, len(table)), replace=args.requests > len(table))
    w, s = table.labels(WEAK), table.labels(STRONG)
    cost_w = np.array([catalog.estimate(Request("x", table.prompts[i]), "small", "single", 1, 0).expected_compute_units
                       for i in rows])
    cost_s = np.array([catalog.estimate(Request("x", table.prompts[i]), "large", "single", 1, 0).expected_compute_units
                       for i in rows])
    target = float(cost_w.mean() + args.target_share * (cost_s.mean() - cost_w.mean()))
    ctl = DualAscent(target_compute_units=target, step=args.step)
    policy.set_budget(ctl)

    lambdas = np.empty(len(rows))

    async def replay() -> tuple[np.ndarray, np.ndarray]:
        costs, correct = np.empty(len(rows)), np.empty(len(rows), dtype=bool)
        for k, i in enumerate(rows):
            clf.row = i
            plan = await policy.plan(Request(f"r{k}", table.prompts[i]))
            costs[k] = plan.expected_compute_units
            correct[k] = w[i] if plan.pool == "small" else s[i]
            ctl.observe(costs[k])
            lambdas[k] = ctl.lambda_per_cu()
        return costs, correct

    costs, correct = asyncio.run(replay())
    warmup = min(1000, len(rows) // 10)
    tail = slice(warmup, None)
    realised = float(costs[tail].mean())
    share = (realised - cost_w[tail].mean()) / (cost_s[tail].mean() - cost_w[tail].mean())
    uniform = float(w[rows][tail].mean() + share * (s[rows][tail].mean() - w[rows][tail].mean()))
    out = {
        "requests": len(rows), "target_compute_units": round(target, 3), "realized_mean_compute_units": round(realised, 3),
        "realized_over_target": round(realised / target, 4), "accuracy": round(float(correct[tail].mean()), 4),
        "uniform_accuracy": round(uniform, 4), "strong_share": round(float(share), 4),
        "weak_only_accuracy": round(float(w[rows][tail].mean()), 4),
        "strong_only_accuracy": round(float(s[rows][tail].mean()), 4), "final_lambda_per_cu": ctl.lambda_per_cu(),
        "measured_over": f"last {len(rows) - warmup} requests",
        # Thinned series for plots drawn from this JSON alone: request index, running mean cost, λ.
        "series": {"request": thin(np.arange(1, len(rows) + 1)),
                   "running_mean_compute_units": thin(np.cumsum(costs) / np.arange(1, len(costs) + 1)),
                   "lambda_per_cu": thin(lambdas)},
    }
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.8), dpi=120)
        ax.plot(np.cumsum(costs) / np.arange(1, len(costs) + 1), label="running mean cost")
        ax.axhline(target, color="grey", ls=":", label="target")
        ax.set_xlabel("request")
        ax.set_ylabel("compute units")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
        out["plot"] = args.plot
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
