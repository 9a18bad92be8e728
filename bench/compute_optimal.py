"""Compute-optimal allocation on real samples: uniform best-of-N vs the ``difficulty`` policy's plans.

Usage:
  ponder bench samples --local --samples 16 --think-samples 4 --out bench/out/samples_arith.jsonl
  .venv/bin/python bench/compute_optimal.py --table bench/out/samples_arith.jsonl [--plot PNG]

(``--draw`` runs the first command itself, resumably.) Input: an outcome
table with M plain samples per question (and optionally think samples), on the
generated ``arith`` task set (seven graded levels, known answers).

Best-of-N. Expected plurality-vote accuracy of n random samples of each
question (``allocation.vote_accuracy``). Uniform: every question gets N.
Policy: the ``difficulty`` policy's rule n = argmax majority_vote_accuracy(p, n)
- λ·n with p predicted for each question by a ``hashed-gbt`` classifier
(the router's) trained by k-fold cross-validation over questions, so no
question is scored by a model that saw its samples. Oracle: the same rule with
p = the question's measured accuracy. λ is swept to trace accuracy against
mean samples; all three curves are scored on the same samples.
``compute_ratio_at_equal_accuracy``: the policy's mean samples to reach uniform
best-of-N's best accuracy, divided by the N uniform needs for it (null when the
policy never gets there); ``oracle_ratio`` likewise. ``hindsight_ratio``
chooses each n on the question's measured vote curve, an upper bound for any
allocation: the policy's binary-vote model gives one sample below p = 1/2,
where a plurality can still be right when wrong answers scatter.

Thinking. Always-think (the think samples), never-think (one plain sample),
and the policy's choice per question: think when thinking_accuracy(p̂, T, g) -
λ·cost beats p̂ - λ·cost, with p̂ from the same cross-validation and the gain g
fitted (``fit_think_gain``, maximum likelihood) on the training folds only;
reported by level as ``share_by_bin``, with accuracy and tokens. Prints one
JSON object last.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
import time

import numpy as np

from ponder.router.classifiers.base import build_classifier
from ponder.router.training.retrain import fit_think_gain
from ponder.tasksets import allocation as al
from ponder.tasksets.samples import read_rows

REF_TOKENS = 256  # the difficulty policy's think_ref_tokens default
LAMBDAS = [0.0] + [float(x) for x in np.geomspace(1e-4, 0.3, 40)]


def fit_predict_factory(classifier: str):
    def fit_predict(tr_texts, tr_y, te_texts):
        clf = build_classifier(classifier)
        clf.fit(list(tr_texts), {"small": np.array(tr_y, dtype=bool)})
        return clf.predict_proba(list(te_texts))[:, 0]
    return fit_predict


def group(rows: list[dict], mode: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        if r["mode"] == mode:
            out.setdefault(r["id"], []).append(r)
    for rs in out.values():
        rs.sort(key=lambda r: r["index"])
    return out


def ratio(uniform: list[tuple[int, float]], curve: list[tuple[float, float]]) -> tuple[float | None, float, int, float | None]:
    """(ratio, uniform best accuracy, N at it, curve's samples there)."""
    best_n, best = max(uniform, key=lambda t: (t[1], -t[0]))
    need = al.samples_at_accuracy(curve, best)
    return (None if need is None else need / best_n), best, best_n, need


def best_of_n(plain: dict[str, list[dict]], p_pred: dict[str, float], permutations: int) -> dict:
    ids = sorted(plain)
    m = min(len(plain[i]) for i in ids)
    vacc = np.array([al.vote_accuracy([r["parsed"] for r in plain[i][:m]], plain[i][0]["answer"], permutations, seed=k)
                     for k, i in enumerate(ids)])
    p_true = np.array([sum(r["correct"] for r in plain[i][:m]) / m for i in ids])
    pp = np.array([p_pred[i] for i in ids])
    uniform = al.uniform_curve(vacc)
    pol = al.allocation_curve(pp, vacc, LAMBDAS)
    ora = al.allocation_curve(p_true, vacc, LAMBDAS)
    hind = al.hindsight_curve(vacc, LAMBDAS)
    pol_pts = [(c, a) for _, c, a in pol]
    ora_pts = [(c, a) for _, c, a in ora]
    hind_pts = [(c, a) for _, c, a in hind]
    r_pol, best, best_n, need_pol = ratio(uniform, pol_pts)
    r_ora, _, _, need_ora = ratio(uniform, ora_pts)
    r_hind, _, _, _ = ratio(uniform, hind_pts)
    at_equal = [{"samples": n, "uniform": round(a, 4),
                 "policy": _r(al.accuracy_at_samples(pol_pts, n)), "oracle": _r(al.accuracy_at_samples(ora_pts, n))}
                for n, a in uniform]
    return {
        "questions": len(ids), "samples_per_question": m,
        "accuracy_one_sample": round(float(p_true.mean()), 4),
        "uniform_best_accuracy": round(best, 4), "uniform_best_n": best_n,
        "policy_samples_at_uniform_best": _r(need_pol), "oracle_samples_at_uniform_best": _r(need_ora),
        "compute_ratio_at_equal_accuracy": _r(r_pol), "oracle_ratio": _r(r_ora), "hindsight_ratio": _r(r_hind),
        "policy_best_accuracy": round(max(a for _, a in pol_pts), 4),
        "oracle_best_accuracy": round(max(a for _, a in ora_pts), 4),
        "at_equal_samples": at_equal,
        "curves": {"uniform": [[n, round(a, 4)] for n, a in uniform],
                   "policy": [[round(l, 6), round(c, 3), round(a, 4)] for l, c, a in pol],
                   "oracle": [[round(l, 6), round(c, 3), round(a, 4)] for l, c, a in ora],
                   "hindsight": [[round(l, 6), round(c, 3), round(a, 4)] for l, c, a in hind]},
        "prediction_mae": round(float(np.abs(pp - p_true).mean()), 4),
        "prediction_corr": round(float(np.corrcoef(pp, p_true)[0, 1]), 4) if pp.std() > 0 else None,
    }


def _r(x, nd: int = 4):
    return None if x is None else round(float(x), nd)


def thinking(plain, think, texts, folds, seed, fit_predict, lam, budget) -> dict:
    ids = sorted(set(plain) & set(think))
    if not ids:
        return {"note": "the table has no think samples"}
    levels = {i: plain[i][0]["level"] for i in ids}
    p_plain = np.array([np.mean([r["correct"] for r in plain[i]]) for i in ids])
    p_think = np.array([np.mean([r["correct"] for r in think[i]]) for i in ids])
    tok_plain = np.array([np.mean([r["output_tokens"] for r in plain[i]]) for i in ids])
    tok_think = np.array([np.mean([r["output_tokens"] for r in think[i]]) for i in ids])
    # Out-of-fold p̂ and gain: fold f's questions are predicted and decided with what the other folds taught.
    order = list(range(len(ids)))
    random.Random(seed).shuffle(order)
    p_hat, gains, choice = np.zeros(len(ids)), [], np.zeros(len(ids), dtype=bool)
    for f in range(folds):
        test = order[f::folds]
        held = set(test)
        train = [k for k in range(len(ids)) if k not in held]
        tr_t, tr_y = [], []
        for k in train:
            tr_t += [texts[ids[k]]] * len(plain[ids[k]])
            tr_y += [r["correct"] for r in plain[ids[k]]]
        # one fit per fold: out-of-fold p̂ for the test questions, in-sample p for the gain fit (as retrain does)
        both = fit_predict(tr_t, tr_y, [texts[ids[k]] for k in test] + [texts[ids[k]] for k in train])
        p_hat[test], p_tr = both[:len(test)], both[len(test):]
        ys = np.array([r["correct"] for k in train for r in think[ids[k]]], dtype=float)
        ps = np.array([p_tr[j] for j, k in enumerate(train) for _ in think[ids[k]]])
        g = fit_think_gain(ps, np.full(len(ys), float(budget)), ys, REF_TOKENS)
        gains.append(g)
        # the plan's cost is what the pool is expected to spend (the training folds' mean), not this question's tokens
        c_plain, c_think = float(tok_plain[train].mean()), float(tok_think[train].mean())
        for k in test:
            choice[k] = al.think_choice(float(p_hat[k]), budget, g, REF_TOKENS, lam, c_plain, c_think)
    acc_policy = np.where(choice, p_think, p_plain)
    tok_policy = np.where(choice, tok_think, tok_plain)
    by_level: dict[str, dict] = {}
    for lv in sorted(set(levels.values())):
        ks = [k for k, i in enumerate(ids) if levels[i] == lv]
        by_level[str(lv)] = {"questions": len(ks), "share": round(float(choice[ks].mean()), 4),
                             "accuracy_never": round(float(p_plain[ks].mean()), 4),
                             "accuracy_always": round(float(p_think[ks].mean()), 4),
                             "accuracy_policy": round(float(acc_policy[ks].mean()), 4)}
    return {
        "questions": len(ids), "thinking_budget": budget, "lambda_per_token": lam,
        "gain_by_fold": [round(g, 4) for g in gains],
        "thinking_share": round(float(choice.mean()), 4),
        "share_by_bin": {lv: v["share"] for lv, v in by_level.items()},
        "by_bin": by_level,
        "accuracy_never_think": round(float(p_plain.mean()), 4),
        "accuracy_always_think": round(float(p_think.mean()), 4),
        "accuracy_policy": round(float(acc_policy.mean()), 4),
        "tokens_never_think": round(float(tok_plain.mean()), 2),
        "tokens_always_think": round(float(tok_think.mean()), 2),
        "tokens_policy": round(float(tok_policy.mean()), 2),
    }


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = result["curves"]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].plot([x[0] for x in c["uniform"]], [x[1] for x in c["uniform"]], "o-", label="uniform best-of-N")
    for key, style, label in (("policy", "s-", "difficulty policy, predicted p"),
                              ("oracle", "^--", "difficulty policy, true p"),
                              ("hindsight", ":", "hindsight (measured vote curves)")):
        pts = al.lower_hull([(x[1], x[2]) for x in c[key]])
        ax[0].plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
    ax[0].set_xlabel("mean samples per question")
    ax[0].set_ylabel("accuracy (plurality vote)")
    ax[0].set_title(f"{result['model']}: {result['questions']} questions")
    ax[0].legend()
    th = result["thinking"]
    if "by_bin" in th:
        lv = list(th["by_bin"])
        x = np.arange(len(lv))
        for off, key, label in ((-0.27, "accuracy_never", "never think"), (0, "accuracy_always", "always think"),
                                (0.27, "accuracy_policy", "policy")):
            ax[1].bar(x + off, [th["by_bin"][k][key] for k in lv], 0.27, label=label)
        ax[1].plot(x, [th["by_bin"][k]["share"] for k in lv], "k.-", label="policy's thinking share")
        ax[1].set_xticks(x, [f"L{k}" for k in lv])
        ax[1].set_xlabel("difficulty level")
        ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default="bench/out/samples_arith.jsonl")
    ap.add_argument("--draw", action="store_true", help="draw (or finish) the table first with a local pool")
    ap.add_argument("--questions", type=int, default=280)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--think-samples", type=int, default=4)
    ap.add_argument("--thinking-budget", type=int, default=48)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--classifier", default="hashed-gbt", help="router classifier that predicts p (cross-validated)")
    ap.add_argument("--lambda-think", type=float, default=1e-3,
                    help="accuracy traded per token in the think choice (the policy's lambda_per_cu default)")
    ap.add_argument("--permutations", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    if args.draw:
        from ponder import cli as ponder_cli

        rc = ponder_cli.main(["bench", "samples", "--local", "--quiet", "--questions", str(args.questions),
                              "--samples", str(args.samples), "--think-samples", str(args.think_samples),
                              "--thinking-budget", str(args.thinking_budget), "--out", args.table])
        if rc:
            return rc
    rows = read_rows(pathlib.Path(args.table))
    if not rows:
        print(f"no table at {args.table}; draw it with `ponder bench samples --local --out {args.table}` "
              "or pass --draw", file=sys.stderr)
        return 2
    meta = json.loads(pathlib.Path(args.table + ".meta.json").read_text())
    plain, think = group(rows, "plain"), group(rows, "think")
    # A partial table (drawing still running) counts only questions with all their plain samples.
    m = max(len(rs) for rs in plain.values())
    plain = {i: rs for i, rs in plain.items() if len(rs) == m}
    think = {i: rs for i, rs in think.items() if i in plain}
    texts = {i: rs[0]["question"] for i, rs in plain.items()}
    ids = sorted(plain)
    fit_predict = fit_predict_factory(args.classifier)
    labels = [[r["correct"] for r in plain[i]] for i in ids]
    p_oof = al.cross_val_predict([texts[i] for i in ids], labels, args.folds, args.seed, fit_predict)
    p_pred = dict(zip(ids, (float(x) for x in p_oof)))
    bon = best_of_n(plain, p_pred, args.permutations)
    budget = meta.get("thinking_budget") or args.thinking_budget
    th = thinking(plain, think, texts, args.folds, args.seed, fit_predict, args.lambda_think, budget)
    result = {
        "benchmark": "compute_optimal", "table": args.table, "model": rows[0]["model"],
        "simulated": any(r["simulated"] for r in rows), "temperature": meta.get("temperature"),
        "classifier": args.classifier, "folds": args.folds, **bon, "thinking": th,
        "accuracy_by_level": {str(lv): round(float(np.mean([r["correct"] for r in rows
                                                            if r["mode"] == "plain" and r["level"] == lv])), 4)
                              for lv in sorted({r["level"] for r in rows})},
        "wall_time_s": round(time.monotonic() - t0, 1),
    }
    if args.plot:
        plot(result, args.plot)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
