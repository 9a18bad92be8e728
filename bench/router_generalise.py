"""Does the router generalise? Every shared outcome table, one set of defaults.

Tables (read in place under ``../shared/data``):

- ``mmlu``: RouteLLM's MMLU, 57 subject files, Mixtral-8x7B vs GPT-4; folds
  grouped by subject, so every fold's subjects are unseen in training;
- ``gsm8k``: RouteLLM's GSM8K with both models' responses (the cascade table);
- ``dcrouter``: DC-Router's nine-model mixed-task table (train and test files
  together), qwen2.5-7b vs llama-3.1-nemotron-51b for the two-model figures, and
  all nine models for the accuracy-vs-cost curve with cost = billions of
  parameters.

Per table: 5-fold CV APGR, CPT50, CPT80 and mean ECE of the classifier, the
random, length-only and oracle baselines from the same run, training and
scoring time. ``mean_margin``/``min_margin``: CV APGR minus the better of
random and length-only, mean and minimum over tables. ``leave_one_out``: per
table, a router trained on the other tables (model columns mapped to the roles
weak/strong) routes the held-out one. ``cascade``: on tables with the weak
model's responses, the cascade's APGR with the weak call's cost counted
(costs 1:20; also 1:5). ``families``: other classifiers (``--families``,
default ``mf``) cross-validated the same way on every table, with their
margins. ``no_signal``: the no-harm check on tables whose labels carry no
signal: for each of ``NO_SIGNAL_TABLES``, ``--shuffles`` copies with the
(weak, strong) outcome pairs permuted across prompts, 5-fold CV each; per
table the mean APGR, baselines and margin over the shuffles, and ``margin``,
the mean over tables (target ≥ -0.01). ``guard``: whether the no-harm guard
(``classifiers.guard``) is on (``--guard on|off`` overrides the default).
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import DATA_DIR, MMLU_STRONG, MMLU_WEAK, emit  # noqa: E402

DC_WEAK, DC_STRONG = "qwen2.5-7b-instruct", "llama-3.1-nemotron-51b-instruct"
# Billions of parameters, the cost of a call for the N-model curve.
DC_COSTS = {"llama3-chatqa-1.5-8b": 8, "qwen2.5-7b-instruct": 7, "llama3-chatqa-1.5-70b": 70,
            "llama-3.1-nemotron-51b-instruct": 51, "mistral-7b-instruct-v0.3": 7, "gemma-2-9b-it": 9,
            "llama-3.1-8b-instruct": 8, "codegemma-7b": 7, "llama-3.3-nemotron-super-49b-v1": 49}
CASCADE_COSTS = ((1.0, 20.0), (1.0, 5.0))
NO_SIGNAL_TABLES = ("gsm8k", "dcrouter")


def tables(only: list[str] | None):
    """name → (table, weak, strong, group_by_file, models, costs, response column or None)."""
    from ponder.router.training.outcomes import load_outcomes

    out = {}
    if not only or "mmlu" in only:
        files = sorted((DATA_DIR / "routellm-mmlu").glob("*.csv"))
        out["mmlu"] = (load_outcomes(files, [MMLU_WEAK, MMLU_STRONG]), MMLU_WEAK, MMLU_STRONG, True, None, None, None)
    if not only or "gsm8k" in only:
        col = MMLU_WEAK + "_response"
        t = load_outcomes([DATA_DIR / "routellm-gsm8k" / "gsm8k_responses.csv"], [MMLU_WEAK, MMLU_STRONG],
                          text_columns=[col])
        out["gsm8k"] = (t, MMLU_WEAK, MMLU_STRONG, False, None, None, col)
    if not only or "dcrouter" in only:
        models = list(DC_COSTS)
        t = load_outcomes([DATA_DIR / "llmrouter-dcrouter" / f for f in ("train.csv", "test.csv")], models)
        out["dcrouter"] = (t, DC_WEAK, DC_STRONG, False, models, [DC_COSTS[m] for m in models], None)
    return out


def as_roles(table, weak: str, strong: str):
    """The table with its weak and strong columns renamed to the roles ``weak`` and ``strong``."""
    from ponder.router.training.outcomes import OutcomeTable

    return OutcomeTable(table.prompts, {"weak": table.labels(weak), "strong": table.labels(strong)}, table.files)


def shuffled(table, weak: str, strong: str, seed: int):
    """The table's prompts with the (weak, strong) outcome pairs permuted across them: labels without signal."""
    from ponder.router.training.outcomes import OutcomeTable

    perm = np.random.default_rng(seed).permutation(len(table))
    return OutcomeTable(table.prompts, {weak: table.labels(weak)[perm], strong: table.labels(strong)[perm]},
                        table.files)


def no_signal(data: dict, folds: int, shuffles: int, classifier: str, params: dict, guard: bool) -> dict:
    """5-fold CV on ``shuffles`` label-permuted copies of each ``NO_SIGNAL_TABLES`` table; margins as in ``tables``."""
    from ponder.router.training.evaluate import cross_validate

    out: dict = {"shuffles": shuffles, "tables": {}}
    for name in [n for n in NO_SIGNAL_TABLES if n in data]:
        t, weak, strong = data[name][:3]
        rows = []
        for i in range(shuffles):
            r = cross_validate(shuffled(t, weak, strong, 1000 + i), weak, strong, folds, False, classifier, params,
                               guard=guard)
            b = r["baselines"]
            rows.append({"apgr": r["apgr"], "random": b["random"]["apgr"], "length": b["length"]["apgr"],
                         "margin": r["apgr"] - max(b["random"]["apgr"], b["length"]["apgr"]),
                         "guard_beta": r["guard_beta"]})
            print(f"no signal {name} #{i}: APGR {r['apgr']:.4f} margin {rows[-1]['margin']:+.4f}", file=sys.stderr)
        out["tables"][name] = {"apgr": float(np.mean([x["apgr"] for x in rows])),
                               "margin": float(np.mean([x["margin"] for x in rows])),
                               "min_margin": float(np.min([x["margin"] for x in rows])), "runs": rows}
    out["margin"] = float(np.mean([v["margin"] for v in out["tables"].values()])) if out["tables"] else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--classifier", default=None, help="default: the evaluate module's DEFAULT_CLASSIFIER")
    ap.add_argument("--params", default="{}", help="classifier params as JSON")
    ap.add_argument("--tables", default=None, help="comma-separated subset of mmlu,gsm8k,dcrouter")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--no-leave-one-out", action="store_true")
    ap.add_argument("--families", default="mf",
                    help="comma-separated other classifiers cross-validated on every table beside the default, "
                    "with their defaults ('' for none)")
    ap.add_argument("--guard", choices=("default", "on", "off"), default="default",
                    help="the no-harm guard (classifiers.guard): the evaluate module's DEFAULT_GUARD, or forced")
    ap.add_argument("--shuffles", type=int, default=3, help="label-permuted copies per no-signal table (0: skip)")
    args = ap.parse_args(argv)

    from ponder.router.training import metrics as M
    from ponder.router.training.cascade import cross_validate_cascade
    from ponder.router.training.evaluate import (
        DEFAULT_CLASSIFIER, DEFAULT_GAIN_HEADS, DEFAULT_GUARD, baselines, cross_validate, train,
    )

    classifier = args.classifier or DEFAULT_CLASSIFIER
    params = json.loads(args.params)
    data = tables(args.tables.split(",") if args.tables else None)
    guard = DEFAULT_GUARD if args.guard == "default" else args.guard == "on"
    out: dict = {"classifier": classifier, "params": params, "gain_heads": DEFAULT_GAIN_HEADS, "guard": guard,
                 "folds": args.folds, "tables": {}, "leave_one_out": {}, "cascade": {}}
    margins = []
    for name, (t, weak, strong, grouped, models, costs, responses) in data.items():
        t0 = time.perf_counter()
        res = cross_validate(t, weak, strong, args.folds, grouped, classifier, params, keep_scores=True,
                             models=models, costs=costs, guard=guard)
        cv_s = time.perf_counter() - t0
        b = res["baselines"]
        row = {
            "n": len(t), "weak": weak, "strong": strong, "grouped_by_file": grouped,
            "apgr": res["apgr"], "cpt50": res["cpt50"], "cpt80": res["cpt80"],
            "ece": float(np.mean(list(res["ece"].values()))),
            "baselines": {k: {"apgr": b[k]["apgr"], "cpt50": b[k]["cpt50"], "cpt80": b[k]["cpt80"]}
                          for k in ("random", "length", "oracle")},
            "cv_seconds": round(cv_s, 1), "guard_beta": res["guard_beta"],
        }
        if "cost_curve" in res:
            cc = res["cost_curve"]
            row["cost_curve"] = {"auc": cc["auc"], **{k: v["auc"] for k, v in cc["baselines"].items()},
                                 "best_single_model": cc["baselines"]["best_single"]["model"]}
        row["margin"] = row["apgr"] - max(b["random"]["apgr"], b["length"]["apgr"])
        margins.append(row["margin"])
        out["tables"][name] = row
        if responses:
            probs = res["oof_probs"]
            casc = {}
            for cw, cs in CASCADE_COSTS:
                c = cross_validate_cascade(t, weak, strong, (cw, cs), args.folds, grouped,
                                           prompt_probs=(probs[weak], probs[strong]))
                casc[f"costs_{cw:g}_{cs:g}"] = {"apgr": c["apgr"], "cpt50": c["cpt50"], "cpt80": c["cpt80"]}
            out["cascade"][name] = {"apgr": casc["costs_1_20"]["apgr"], "prompt_only_apgr": res["apgr"],
                                    "gain_over_prompt_only": casc["costs_1_20"]["apgr"] - res["apgr"], **casc}
        print(f"{name}: APGR {row['apgr']:.4f} margin {row['margin']:+.4f} ({cv_s:.0f} s)", file=sys.stderr)
    out["families"] = {}
    for fam in [f for f in args.families.split(",") if f and f != classifier]:
        rows = {}
        for name, (t, weak, strong, grouped, _, _, _) in data.items():
            t0 = time.perf_counter()
            r = cross_validate(t, weak, strong, args.folds, grouped, fam, {}, guard=guard)
            b = r["baselines"]
            rows[name] = {"apgr": r["apgr"], "margin": r["apgr"] - max(b["random"]["apgr"], b["length"]["apgr"]),
                          "cv_seconds": round(time.perf_counter() - t0, 1)}
            print(f"{fam} on {name}: APGR {r['apgr']:.4f} ({rows[name]['cv_seconds']:.0f} s)", file=sys.stderr)
        out["families"][fam] = {"tables": rows, "mean_apgr": float(np.mean([v["apgr"] for v in rows.values()])),
                                "mean_margin": float(np.mean([v["margin"] for v in rows.values()])),
                                "min_margin": float(np.min([v["margin"] for v in rows.values()]))}
    out["mean_margin"] = float(np.mean(margins))
    out["min_margin"] = float(np.min(margins))
    out["mean_apgr"] = float(np.mean([r["apgr"] for r in out["tables"].values()]))
    if not args.no_leave_one_out and len(data) > 1:
        roles = {name: as_roles(v[0], v[1], v[2]) for name, v in data.items()}
        for name, held in roles.items():
            from ponder.router.training.outcomes import OutcomeTable

            rest = [r for n, r in roles.items() if n != name]
            train_t = OutcomeTable(sum((r.prompts for r in rest), []),
                                   {k: np.concatenate([r.labels(k) for r in rest]) for k in ("weak", "strong")},
                                   sum((r.files for r in rest), []))
            t0 = time.perf_counter()
            clf = train(train_t, "weak", "strong", classifier, params, guard=guard)
            train_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            scores = clf.gain_score(held.prompts, "weak", "strong")
            score_ms = (time.perf_counter() - t0) * 1e3 / len(held)
            w, s = held.labels("weak"), held.labels("strong")
            bl = baselines(held, "weak", "strong")
            apgr = M.apgr(M.router_curve(scores, w, s))
            out["leave_one_out"][name] = {
                "apgr": apgr, "train_rows": len(train_t), "train_seconds": round(train_s, 1),
                "score_ms_per_prompt": round(score_ms, 3),
                "margin": apgr - max(bl["random"]["apgr"], bl["length"]["apgr"]),
                "baselines": {k: {"apgr": bl[k]["apgr"]} for k in ("random", "length", "oracle")},
                "guard_beta": clf.guard.beta if clf.guard is not None else None,
            }
            print(f"leave out {name}: APGR {apgr:.4f}", file=sys.stderr)
    if out["leave_one_out"]:
        lo = [v["margin"] for v in out["leave_one_out"].values()]
        out["leave_one_out_mean_margin"], out["leave_one_out_min_margin"] = float(np.mean(lo)), float(np.min(lo))
    if args.shuffles > 0:
        out["no_signal"] = no_signal(data, args.folds, args.shuffles, classifier, params, guard)
    out["targets"] = {"min_margin": -0.01, "no_signal_margin": -0.01, "mean_margin": 0.05, "mmlu_apgr": 0.65, "gsm8k_apgr": 0.70,
                      "cascade_gain_over_prompt_only": 0.05}
    emit(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
