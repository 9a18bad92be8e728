"""Cross-validated router quality on the shared MMLU outcome tables.

5-fold CV grouped by file (each fold's subjects unseen in training) and plain
random 5-fold. Headline figures route the whole table by out-of-fold scores,
with the random, length-only and oracle baselines on the whole table (the
footing of the table's own published figures: length-only 0.59, oracle 1.29);
``fold_mean`` has the within-fold averages. Prints one JSON object;
``--plot PNG`` draws the grouped out-of-fold curves.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import MMLU_DIR as DATA, MMLU_STRONG as STRONG, MMLU_WEAK as WEAK, spread, thin  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plot", metavar="PNG")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--classifier", default="hashed-gbt")
    ap.add_argument("--params", default="{}", help="classifier params as JSON")
    ap.add_argument("--max-files", type=int, default=0,
                    help="use this many of the tables, evenly spread over the sorted list (0: all; quick runs)")
    args = ap.parse_args(argv)

    from ponder.router.training import metrics as M
    from ponder.router.training.evaluate import cross_validate
    from ponder.router.training.outcomes import load_outcomes

    files = spread(sorted(DATA.glob("*.csv")), args.max_files)
    if not files:
        print(f"no outcome tables under {DATA}", file=sys.stderr)
        return 1
    table = load_outcomes(files, [WEAK, STRONG])
    params = json.loads(args.params)
    out: dict = {"n": len(table), "files": len(files), "classifier": args.classifier, "folds": args.folds}
    for name, grouped in (("grouped", True), ("random_folds", False)):
        t0 = time.perf_counter()
        res = cross_validate(table, WEAK, STRONG, args.folds, grouped, args.classifier, params, keep_scores=True)
        scores = res.pop("oof_scores")
        res.pop("oof_probs")
        res["per_fold_apgr"] = [round(f["apgr"], 4) for f in res.pop("per_fold")]
        res["seconds"] = round(time.perf_counter() - t0, 1)
        out[name] = res
        if not grouped:
            continue
        w, s = table.labels(WEAK), table.labels(STRONG)
        curves = {"router": M.router_curve(scores, w, s), "random": M.random_curve(w, s),
                  "oracle": M.oracle_curve(w, s)}
        # The grouped out-of-fold curves, thinned, so a report can draw them from this JSON alone.
        out["curves"] = {"acc_weak": curves["router"].acc_weak, "acc_strong": curves["router"].acc_strong,
                         **{k: {"strong_share": thin(c.x), "accuracy": thin(c.acc)} for k, c in curves.items()}}
        if args.plot:
            from ponder.router.training.plot import plot_curves

            plot_curves(args.plot, curves, title=f"MMLU, {args.folds}-fold grouped by subject (out-of-fold)")
            out["plot"] = args.plot
    out["apgr_grouped"] = out["grouped"]["apgr"]
    out["apgr_random_folds"] = out["random_folds"]["apgr"]
    out["apgr_grouped_fold_mean"] = out["grouped"]["fold_mean"]["apgr"]
    out["target_apgr_grouped"] = 0.65
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
