"""``ponder router train|eval|cv|retrain``: build and judge difficulty routers.

- train: fit a classifier on outcome CSVs (weak and strong columns, or ``--models A,B,C``) and save a model directory.
- eval: router metrics of a saved model on outcome CSVs; ``--plot`` draws the curves.
- cv: K-fold cross-validation (optionally grouped by file) with random and length baselines;
  ``--cascade`` also evaluates the cascade on the weak model's responses.

Models: ``--weak W --strong S``, or ``--models A,B,C --costs 1,4,9`` (N pools; the
two-model figures then use the cheapest as weak and the dearest as strong unless
``--weak``/``--strong`` say otherwise) and the accuracy-vs-mean-cost curve.
- retrain: fit from the outcome log and feedback in Redis: single-sample records train one target
  per pool, think records fit each pool's thinking gain, best_of_n (and other) records are skipped.

Every command prints a readable summary, or one JSON object with ``--json``;
domain errors print ``error: ...`` and exit 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from ponder.common.errors import PonderError


def _params(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        d = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--params must be a JSON object: {e}") from None
    if not isinstance(d, dict):
        raise argparse.ArgumentTypeError("--params must be a JSON object")
    return d


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _names(s: str) -> list[str]:
    names = [n.strip() for n in s.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated model columns")
    return names


def _costs(s: str) -> list[float]:
    try:
        costs = [float(c) for c in s.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from None
    if any(not c > 0 for c in costs):
        raise argparse.ArgumentTypeError(f"costs must be positive, got {s!r}")
    return costs


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outcomes", nargs="+", required=True, metavar="FILE", help="Outcome CSV files.")
    p.add_argument("--weak", metavar="COL", help="Column of the weak (cheap) model.")
    p.add_argument("--strong", metavar="COL", help="Column of the strong (expensive) model.")
    p.add_argument("--models", type=_names, metavar="A,B,C", help="Every model column (two or more).")
    p.add_argument("--costs", type=_costs, metavar="1,4,9", help="Cost per call of each of --models, in order.")
    p.add_argument("--prompt-column", default="prompt", help="Column holding the prompt (default: prompt).")
    p.add_argument("--json", action="store_true", help="Print one JSON object.")


def _classifier_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--classifier", default="hashed-gbt", help="Registered classifier name.")
    p.add_argument("--params", type=_params, default={}, metavar="JSON", help="Classifier params as a JSON object.")
    p.add_argument("--gain-heads", action=argparse.BooleanOptionalAction, default=None,
                   help="Learn P(strong right, weak wrong) and the reverse for the routing order "
                   "(default: the evaluate module's DEFAULT_GAIN_HEADS).")
    p.add_argument("--guard", action=argparse.BooleanOptionalAction, default=None,
                   help="Blend the routing order with a length-only prior, its weight chosen by inner cross-validation "
                   "(for a model that will route a domain it was not trained on; default: the evaluate module's "
                   "DEFAULT_GUARD).")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    router = subparsers.add_parser("router", help="Train and evaluate difficulty routers.")
    router.set_defaults(func=run)
    sub = router.add_subparsers(dest="router_command", required=True)

    p = sub.add_parser("train", help="Fit a classifier on outcome tables and save it.")
    _common(p)
    _classifier_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="Model directory to write.")
    p.set_defaults(router_func=cmd_train)

    p = sub.add_parser("eval", help="Router metrics of a saved model on outcome tables.")
    _common(p)
    p.add_argument("--model", required=True, metavar="DIR", help="Model directory from `router train`.")
    p.add_argument("--plot", metavar="PNG", help="Draw accuracy vs strong-call share.")
    p.set_defaults(router_func=cmd_eval)

    p = sub.add_parser("cv", help="K-fold cross-validation with baselines.")
    _common(p)
    _classifier_args(p)
    p.add_argument("--folds", type=int, default=5, metavar="K", help="Number of folds (default 5).")
    p.add_argument("--group-by-file", action="store_true", help="Keep each input file inside one fold.")
    p.add_argument("--seed", type=int, default=0, help="Seed for ungrouped folds.")
    p.add_argument("--cascade", action="store_true",
                   help="Also evaluate the cascade (weak model first, escalate on low confidence in its answer); "
                   "needs the weak model's responses. Costs: --costs, or weak 1 and strong 20.")
    p.add_argument("--responses", metavar="COL", help="Column of the weak model's responses (default: <weak>_response).")
    p.add_argument("--save-scorer", metavar="JSON",
                   help="With --cascade: also fit the answer-confidence scorer on every row and write it here "
                   "(for routing.cascade.scorer_path).")
    p.set_defaults(router_func=cmd_cv)

    p = sub.add_parser("retrain", help="Fit from the outcome log and feedback in Redis.")
    p.add_argument("--config", metavar="FILE", help="ponder.yaml (for redis.url and redis.outcome_stream).")
    p.add_argument("--redis-url", help="Redis URL; overrides the config and $REDIS_URL.")
    p.add_argument("--stream", help="Outcome stream key; default: the config's redis.outcome_stream.")
    p.add_argument("--feedback-key", default=None, help="Feedback hash key (default ponder:feedback).")
    p.add_argument("--min-rows", type=int, default=50, help="Fewest labelled single records per pool (default 50).")
    p.add_argument("--min-pools", type=_positive_int, default=1, metavar="N",
                   help="Refuse unless N pools have --min-rows usable records (default 1; 2 to rank pools).")
    p.add_argument("--cv-folds", type=int, default=5, metavar="K",
                   help="Cross-validate the new model on the log before saving it (0: skip; default 5).")
    p.add_argument("--think-ref-tokens", type=_positive_int, default=None, metavar="T",
                   help="think_ref_tokens of the difficulty policy the thinking gain is fitted for "
                   "(default: that policy's default, 256).")
    p.add_argument("--min-think-rows", type=_positive_int, default=30, metavar="N",
                   help="Fewest labelled think records per pool to fit its thinking gain (default 30).")
    p.add_argument("--min-softcot-rows", type=_positive_int, default=30, metavar="N",
                   help="Fewest labelled softcot records per SoftCoT pool to fit its soft-thought gain (default 30).")
    _classifier_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="Model directory to write.")
    p.add_argument("--json", action="store_true", help="Print one JSON object.")
    p.set_defaults(router_func=cmd_retrain)
    return router


def _emit(args: argparse.Namespace, obj: dict[str, Any], text: Callable[[dict[str, Any]], str]) -> None:
    print(json.dumps(obj, sort_keys=True) if args.json else text(obj))


DEFAULT_CASCADE_COSTS = (1.0, 20.0)


def _roles(args: argparse.Namespace) -> tuple[list[str], str, str, list[float] | None]:
    """(models, weak, strong, costs) from --models/--costs/--weak/--strong; OutcomeError naming the file."""
    from ponder.router.training.outcomes import OutcomeError

    src = args.outcomes[0]
    models = args.models
    if models is None:
        if not (args.weak and args.strong):
            raise OutcomeError(src, "name the models: --weak and --strong, or --models A,B[,C...]")
        models = [args.weak, args.strong]
    if len(models) < 2:
        raise OutcomeError(src, f"need at least two model columns, got {models}")
    if args.costs is not None and len(args.costs) != len(models):
        raise OutcomeError(src, f"{len(args.costs)} costs for {len(models)} models ({', '.join(models)})")
    if args.costs is not None:
        weak = args.weak or models[min(range(len(models)), key=lambda i: args.costs[i])]
        strong = args.strong or models[max(range(len(models)), key=lambda i: args.costs[i])]
    else:
        weak, strong = args.weak or models[0], args.strong or models[-1]
    for role, col in (("weak", weak), ("strong", strong)):
        if col not in models:
            raise OutcomeError(src, f"the {role} model is not among --models {models}", column=col)
    return models, weak, strong, args.costs


def _load(args: argparse.Namespace, text_columns: tuple[str, ...] = ()):
    from ponder.router.training.outcomes import load_outcomes

    models, _, _, _ = _roles(args)
    return load_outcomes(args.outcomes, models, prompt_column=args.prompt_column, text_columns=text_columns)


def _gain_heads(args: argparse.Namespace) -> bool:
    from ponder.router.training.evaluate import DEFAULT_GAIN_HEADS

    return DEFAULT_GAIN_HEADS if args.gain_heads is None else args.gain_heads


def _guard(args: argparse.Namespace) -> bool:
    from ponder.router.training.evaluate import DEFAULT_GUARD

    return DEFAULT_GUARD if args.guard is None else args.guard


def cmd_train(args: argparse.Namespace) -> int:
    from ponder.router.classifiers import save_classifier
    from ponder.router.training.evaluate import train_models

    table = _load(args)
    models, weak, strong, costs = _roles(args)
    clf = train_models(table, models, args.classifier, args.params, (weak, strong), _gain_heads(args), _guard(args))
    clf.report["files"] = sorted(set(table.files))
    if costs is not None:
        clf.report["costs"] = dict(zip(models, costs))
    out = save_classifier(clf, args.out)
    res = {"model": str(out), "classifier": clf.name, "n": len(table), "targets": clf.targets,
           "calibration": clf.report.get("targets", {})}

    def text(r: dict[str, Any]) -> str:
        lines = [f"trained {r['classifier']} on {r['n']} rows -> {r['model']}"]
        for t, c in r["calibration"].items():
            lines.append(f"  {t}: ECE {c['ece_uncalibrated']:.4f} raw, {c['ece_calibrated']:.4f} calibrated ({c['calibration']})")
        return "\n".join(lines)

    _emit(args, res, text)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ponder.router.classifiers import load_classifier
    from ponder.router.training import metrics as M
    from ponder.router.training.evaluate import evaluate
    from ponder.router.training.outcomes import OutcomeError

    clf = load_classifier(args.model)
    models, weak, strong, costs = _roles(args)
    for col in models:
        if col not in clf.targets:
            raise OutcomeError(args.model, f"the model has no target {col!r}; it predicts {clf.targets}", column=col)
    table = _load(args)
    res = evaluate(clf, table, weak, strong, models if costs is not None else None, costs)
    scores = res.pop("_scores")
    if args.plot:
        from ponder.router.training.plot import plot_curves

        w, s = table.labels(weak), table.labels(strong)
        plot_curves(args.plot, {
            "router": M.router_curve(scores, w, s), "random": M.random_curve(w, s), "oracle": M.oracle_curve(w, s),
        }, title=f"{clf.name} on {len(table)} prompts")
        res["plot"] = args.plot
    res["model"] = args.model
    _emit(args, res, _metrics_text)
    return 0


def _metrics_text(r: dict[str, Any]) -> str:
    lines = [f"n={r['n']}  APGR {r['apgr']:.3f}  CPT(50%) {r['cpt50']:.3f}  CPT(80%) {r['cpt80']:.3f}"]
    for name, b in r.get("baselines", {}).items():
        lines.append(f"  {name:8s} APGR {b['apgr']:.3f}  CPT(50%) {b['cpt50']:.3f}  CPT(80%) {b['cpt80']:.3f}")
    fm = r.get("fold_mean")
    if fm:
        lines.append(f"  within-fold mean: APGR {fm['apgr']:.3f}  CPT(50%) {fm['cpt50']:.3f}  CPT(80%) {fm['cpt80']:.3f}"
                     f"  (random {fm['baselines']['random']['apgr']:.3f}, length {fm['baselines']['length']['apgr']:.3f},"
                     f" oracle {fm['baselines']['oracle']['apgr']:.3f})")
    for t, e in r.get("ece", {}).items():
        lines.append(f"  ECE {t}: {e:.4f}")
    cc = r.get("cost_curve")
    if cc:
        b = cc["baselines"]
        lines.append(f"  accuracy vs mean cost, area: router {cc['auc']:.4f}  random {b['random']['auc']:.4f}  "
                     f"best single ({b['best_single']['model']}) {b['best_single']['auc']:.4f}  oracle {b['oracle']['auc']:.4f}")
    c = r.get("cascade")
    if c:
        lines.append(f"  cascade (costs {c['costs'][0]:g}:{c['costs'][1]:g}, weak call counted): APGR {c['apgr']:.3f}  "
                     f"CPT(50%) {c['cpt50']:.3f}  CPT(80%) {c['cpt80']:.3f}")
    if r.get("plot"):
        lines.append(f"  plot: {r['plot']}")
    return "\n".join(lines)


def cmd_cv(args: argparse.Namespace) -> int:
    from ponder.router.training.cascade import cross_validate_cascade, fit_scorer, response_column
    from ponder.router.training.evaluate import cross_validate

    models, weak, strong, costs = _roles(args)
    if args.save_scorer and not args.cascade:
        from ponder.common.errors import InvalidArgument

        raise InvalidArgument("--save-scorer", "needs --cascade (the scorer is fitted on the weak model's responses)")
    responses = (args.responses or response_column(weak)) if args.cascade else None
    table = _load(args, (responses,) if responses else ())
    res = cross_validate(table, weak, strong, args.folds, args.group_by_file, args.classifier, args.params, args.seed,
                         keep_scores=args.cascade, models=models, costs=costs, gain_heads=_gain_heads(args),
                         guard=_guard(args))
    if args.cascade:
        probs = res.pop("oof_probs")
        res.pop("oof_scores")
        pair = (costs[models.index(weak)], costs[models.index(strong)]) if costs is not None else DEFAULT_CASCADE_COSTS
        res["cascade"] = cross_validate_cascade(table, weak, strong, pair, args.folds, args.group_by_file, args.seed,
                                                responses, prompt_probs=(probs[weak], probs[strong]))
        if args.save_scorer:
            res["cascade"]["scorer"] = str(fit_scorer(table, weak, responses, args.seed).save(args.save_scorer))
    _emit(args, res, _metrics_text)
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    import os

    import redis

    from ponder.common.config import load_config
    from ponder.router import outcome_schema as S
    from ponder.router.classifiers import save_classifier
    from ponder.router.training.retrain import THINK_REF_TOKENS, cv_report, read_outcome_log, train_from_log

    cfg = load_config(args.config)
    url = args.redis_url or cfg.redis.url or os.environ.get("REDIS_URL")
    if not url:
        from ponder.common.errors import ConfigError

        raise ConfigError("retrain", [("redis.url", "no Redis to read the outcome log from; pass --redis-url or set REDIS_URL")])
    client = redis.Redis.from_url(url)
    try:
        log = read_outcome_log(client, args.stream or cfg.redis.outcome_stream, args.feedback_key or S.FEEDBACK_HASH)
    finally:
        client.close()
    clf = train_from_log(log, args.classifier, args.params, args.min_rows,
                         THINK_REF_TOKENS if args.think_ref_tokens is None else args.think_ref_tokens,
                         args.min_think_rows, args.min_pools, min_softcot_rows=args.min_softcot_rows, guard=_guard(args))
    # Judged before it is written: the router hot-reloads the directory as soon as model.json lands.
    cv = (cv_report(log, args.classifier, args.params, args.min_rows, folds=args.cv_folds, guard=_guard(args))
          if args.cv_folds >= 2 else None)
    if cv is not None:
        clf.report["cv"] = cv
        text = f"cv APGR {cv['apgr']:.3f} on {cv['paired']} paired prompts" if cv["apgr"] is not None else \
            f"cv APGR not measured: {cv.get('apgr_note')}"
        aucs = ", ".join(f"{p} AUC {v['auc']:.3f}" for p, v in cv["pools"].items() if v["auc"] is not None)
        print(f"new model: {text}; {aucs}", file=sys.stderr, flush=True)
    out = save_classifier(clf, args.out)
    res = {"model": str(out), "classifier": clf.name, "targets": clf.targets, "records": log.records,
           "labelled": log.labelled, "used": log.kind_counts(), "per_pool": log.per_pool(),
           "calibration": clf.report.get("targets", {}),
           "think_logit_gain": clf.report.get("think_logit_gain", {}),
           "think_gain_skipped": clf.report.get("think_gain_skipped", {}), "cv": cv,
           "softcot_logit_gain": clf.report.get("softcot_logit_gain", {}),
           "softcot_gain_skipped": clf.report.get("softcot_gain_skipped", {})}

    def text(r: dict[str, Any]) -> str:
        u = r["used"]
        gains = ", ".join(f"{p} {g['gain']:.3f} (n={g['n']})" for p, g in r["think_logit_gain"].items()) or "none"
        return (f"retrained {r['classifier']} on {r['labelled']} labelled of {r['records']} records: "
                f"{u['single']} single (per pool {r['per_pool']}), {u['think']} think, "
                f"{u['skipped']} skipped (best_of_n and others); thinking gain fitted: {gains}"
                + (f"; {u.get('softcot', 0)} softcot, soft-thought gain fitted: " + (", ".join(
                    f"{p} {g['gain']:.3f} (n={g['n']})" for p, g in r["softcot_logit_gain"].items()) or "none")
                   if u.get("softcot") else "") + f" -> {r['model']}")

    _emit(args, res, text)
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed ``router`` command; PonderError → message on stderr, exit 2."""
    try:
        return args.router_func(args)
    except PonderError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ponder")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
