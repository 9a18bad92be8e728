"""Train, evaluate and cross-validate routers on outcome tables.

Two models (weak, strong): the router's score for sending a prompt to the
strong model is the expected gain (``Classifier.gain_score``),
P(strong right) - P(weak right) from the two calibrated heads; with
``gain_heads`` the classifier also learns P(strong right ∧ weak wrong) and
P(weak right ∧ strong wrong) and the score is their difference (off by
default: it scored lower in 5-fold CV on GSM8K and DC-Router for both
``hashed-gbt`` and ``sw-neighbours``). Higher goes strong first. Baselines on the same rows: ``random`` (coin-flip scores, mean over
``random_draws`` seeds), ``length`` (longer prompts go strong first) and
``oracle``.

The no-harm guard (``classifiers.guard``; off by default, see DEFAULT_GUARD): training with
roles also fits how far to shrink the pair's gain towards the length-only
prior, by inner cross-validation grouped by source file where there are
enough files; ``cross_validate`` reports each fold's choice as ``guard_beta``.

N models (``models`` with ``costs``): the classifier has one P(correct) head
per model and each prompt goes to argmax P - λ·cost; the accuracy against
mean cost curve over λ and its area are reported against a random mix, the
best single model and the oracle (``metrics.cost_summary``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ponder.router.classifiers import Classifier, build_classifier, gain_target
from ponder.router.training import metrics as M
from ponder.router.training.outcomes import OutcomeError, OutcomeTable, require_both_classes

DEFAULT_CLASSIFIER = "hashed-gbt"
DEFAULT_GAIN_HEADS = False  # measured: gain heads lowered CV APGR on GSM8K and DC-Router (see README)
# Measured (bench/router_generalise.py, guard on vs off in one session): on, leave-one-table-out margins rise from
# mean -0.027 to -0.004, but 5-fold APGR falls on every shared table (MMLU 0.653 -> 0.642, GSM8K 0.647 -> 0.639)
# and the permuted-label no-signal margin worsens (GSM8K -0.010 -> -0.020); off by the mean (see README).
DEFAULT_GUARD = False


def route_scores(clf: Classifier, texts: list[str], weak: str, strong: str) -> np.ndarray:
    return clf.gain_score(texts, weak, strong)


def _source(table: OutcomeTable) -> str:
    files = sorted(set(table.files))
    return files[0] if len(files) == 1 else f"{files[0]} (+{len(files) - 1} more files)"


def check_models(table: OutcomeTable, models: Sequence[str], costs: Sequence[float] | None = None) -> None:
    """OutcomeError naming the file (and column) for fewer than two models, a repeated or absent column,
    a cost list of another length or a non-positive cost."""
    src = _source(table)
    if len(models) < 2:
        raise OutcomeError(src, f"need at least two model columns, got {list(models)}")
    if len(set(models)) != len(models):
        raise OutcomeError(src, f"model columns repeat: {list(models)}")
    for m in models:
        if m not in table.outcomes:
            raise OutcomeError(src, "no such model column loaded", column=m)
    if costs is not None:
        if len(costs) != len(models):
            raise OutcomeError(src, f"{len(costs)} costs for {len(models)} models ({', '.join(models)})")
        bad = [(m, c) for m, c in zip(models, costs) if not c > 0]
        if bad:
            raise OutcomeError(src, f"cost {bad[0][1]} is not positive", column=bad[0][0])


def gain_labels(table: OutcomeTable, weak: str, strong: str) -> dict[str, np.ndarray]:
    """The two gain heads' labels: strong right ∧ weak wrong, and the reverse; {} when either never happens."""
    w, s = table.labels(weak), table.labels(strong)
    up, down = s & ~w, w & ~s
    if not (up.any() and down.any() and (~up).any() and (~down).any()):
        return {}
    return {gain_target(weak, strong): up, gain_target(strong, weak): down}


def train_models(table: OutcomeTable, models: Sequence[str], classifier: str = DEFAULT_CLASSIFIER,
                 params: dict[str, Any] | None = None, roles: tuple[str, str] | None = None,
                 gain_heads: bool = DEFAULT_GAIN_HEADS, guard: bool = DEFAULT_GUARD) -> Classifier:
    """Fit one head per model column (and the gain heads of ``roles`` = (weak, strong)); with ``guard``
    also the no-harm guard, its inner folds grouped by source file when there are enough files.

    OutcomeError when a column has one class or the models are unusable (``check_models``).
    """
    check_models(table, models)
    for col in models:
        require_both_classes(table, col, _source(table))
    labels = {m: table.labels(m) for m in models}
    if roles is not None and gain_heads:
        labels.update(gain_labels(table, *roles))
    clf = build_classifier(classifier, params)
    if guard and roles is not None:
        clf.fit_guarded(table.prompts, labels, roles, table.files)
    else:
        clf.fit(table.prompts, labels)
    if roles is not None:
        clf.report["roles"] = {"weak": roles[0], "strong": roles[1]}
    return clf


def train(table: OutcomeTable, weak: str, strong: str, classifier: str = DEFAULT_CLASSIFIER,
          params: dict[str, Any] | None = None, gain_heads: bool = DEFAULT_GAIN_HEADS,
          guard: bool = DEFAULT_GUARD) -> Classifier:
    """Fit ``classifier`` with targets weak and strong (plus gain heads and the guard); OutcomeError when a
    column has one class."""
    return train_models(table, [weak, strong], classifier, params, (weak, strong), gain_heads, guard)


def random_baseline(w: np.ndarray, s: np.ndarray, draws: int = 10, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    runs = [M.summary(M.router_curve(rng.random(len(w)), w, s)) for _ in range(draws)]
    return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}


def length_scores(texts: list[str]) -> np.ndarray:
    return np.array([len(t) for t in texts], dtype=np.float64)


def baselines(table: OutcomeTable, weak: str, strong: str) -> dict[str, dict[str, float]]:
    w, s = table.labels(weak), table.labels(strong)
    return {
        "random": random_baseline(w, s),
        "length": M.summary(M.router_curve(length_scores(table.prompts), w, s)),
        "oracle": M.summary(M.oracle_curve(w, s)),
    }


def evaluate(clf: Classifier, table: OutcomeTable, weak: str, strong: str,
             models: Sequence[str] | None = None, costs: Sequence[float] | None = None) -> dict[str, Any]:
    """Router metrics plus per-target calibration error on ``table``; with ``models`` and ``costs`` also
    ``cost_curve`` (``metrics.cost_summary``)."""
    w, s = table.labels(weak), table.labels(strong)
    probs = clf.predict_proba(table.prompts)
    scores = route_scores(clf, table.prompts, weak, strong)
    out: dict[str, Any] = {"n": len(table), **M.summary(M.router_curve(scores, w, s))}
    out["oracle_apgr"] = M.apgr(M.oracle_curve(w, s))
    out["ece"] = {t: M.expected_calibration_error(probs[:, j], table.labels(t))
                  for j, t in enumerate(clf.targets) if t in table.outcomes}
    base = baselines(table, weak, strong)
    out["baselines"] = {"random": base["random"], "length": base["length"]}
    if models is not None and costs is not None:
        cols = [clf.targets.index(m) for m in models]
        out["cost_curve"] = M.cost_summary(probs[:, cols], np.column_stack([table.labels(m) for m in models]),
                                           np.asarray(costs, dtype=np.float64), list(models))
    out["_scores"] = scores
    return out


def assign_folds(table: OutcomeTable, k: int, group_by_file: bool, seed: int = 0) -> np.ndarray:
    """Fold index per row. Grouped: whole files, largest first into the fold with fewest rows."""
    n = len(table)
    if k < 2:
        raise OutcomeError(_source(table), f"need at least 2 folds, got {k}")
    if n < k:
        raise OutcomeError(_source(table), f"{n} rows is fewer than {k} folds")
    if not group_by_file:
        return np.random.default_rng(seed).permutation(n) % k
    files = sorted(set(table.files))
    if len(files) < k:
        raise OutcomeError(_source(table), f"--group-by-file needs at least {k} files for {k} folds, got {len(files)}")
    names = np.array(table.files)
    sizes = {f: int(np.count_nonzero(names == f)) for f in files}
    load = np.zeros(k, dtype=np.int64)
    fold_of: dict[str, int] = {}
    for f in sorted(files, key=lambda f: (-sizes[f], f)):
        j = int(np.argmin(load))
        fold_of[f] = j
        load[j] += sizes[f]
    return np.array([fold_of[f] for f in table.files])


def cross_validate(table: OutcomeTable, weak: str, strong: str, k: int = 5, group_by_file: bool = False,
                   classifier: str = DEFAULT_CLASSIFIER, params: dict[str, Any] | None = None,
                   seed: int = 0, keep_scores: bool = False, models: Sequence[str] | None = None,
                   costs: Sequence[float] | None = None, gain_heads: bool = DEFAULT_GAIN_HEADS,
                   guard: bool = DEFAULT_GUARD) -> dict[str, Any]:
    """K-fold CV: every row scored by the model trained without its fold.

    The headline ``apgr``, ``cpt50`` and ``cpt80`` are the metrics of the whole
    table routed by those out-of-fold scores (the calibrated probabilities make
    the folds' scores comparable), the same footing as the metrics of a whole
    outcome table; ``baselines`` (``random``, ``length``, ``oracle``) are on the
    whole table too. ``fold_mean`` has the same metrics and baselines computed
    within each held-out fold and averaged: every fold normalised by its own
    weak and strong accuracy, which a grouped split makes differ by subject.
    Also n, per-fold figures and mean ECE per target. With ``models`` (every
    model column, weak and strong among them) and ``costs``: ``cost_curve``
    from the out-of-fold probabilities. With ``keep_scores`` also
    ``oof_scores`` and ``oof_probs`` ({target: array}).
    """
    models = list(models) if models is not None else [weak, strong]
    for role in (weak, strong):
        if role not in models:
            raise OutcomeError(_source(table), f"the {'weak' if role == weak else 'strong'} model is not among "
                               f"the models {models}", column=role)
    check_models(table, models, costs)
    fold = assign_folds(table, k, group_by_file, seed)
    w_all, s_all = table.labels(weak), table.labels(strong)
    oof = np.zeros(len(table))
    oof_probs = {m: np.zeros(len(table)) for m in models}
    per_fold: list[dict[str, Any]] = []
    base: dict[str, list[dict[str, float]]] = {"random": [], "length": [], "oracle": []}
    eces: dict[str, list[float]] = {m: [] for m in models}
    guards: list[float] = []
    for j in range(k):
        te = np.flatnonzero(fold == j)
        tr = np.flatnonzero(fold != j)
        test, train_t = table.subset(te), table.subset(tr)
        clf = train_models(train_t, models, classifier, params, (weak, strong), gain_heads, guard)
        if "guard" in clf.report:
            guards.append(clf.report["guard"]["beta"])
        res = evaluate(clf, test, weak, strong)
        probs = clf.predict_proba(test.prompts)
        for m in models:
            oof_probs[m][te] = probs[:, clf.targets.index(m)]
        oof[te] = res.pop("_scores")
        for t in models:
            eces[t].append(res["ece"][t])
        fb = baselines(test, weak, strong)
        for name in base:
            base[name].append(fb[name])
        per_fold.append({
            "n": len(test), "files": len(set(test.files)), "apgr": res["apgr"], "cpt50": res["cpt50"],
            "cpt80": res["cpt80"], "acc_weak": res["acc_weak"], "acc_strong": res["acc_strong"],
        })

    def mean(rows: list[dict[str, float]], key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    keys = ("apgr", "cpt50", "cpt80")
    pooled = M.summary(M.router_curve(oof, w_all, s_all))
    extra: dict[str, Any] = {"oof_scores": oof, "oof_probs": oof_probs} if keep_scores else {}
    if costs is not None:
        extra["cost_curve"] = M.cost_summary(np.column_stack([oof_probs[m] for m in models]),
                                             np.column_stack([table.labels(m) for m in models]),
                                             np.asarray(costs, dtype=np.float64), models)
    return {
        **extra,
        "n": len(table),
        "folds": k,
        "group_by_file": group_by_file,
        "classifier": classifier,
        "gain_heads": gain_heads,
        "guard_beta": guards,
        **{key: pooled[key] for key in keys},
        "acc_weak": pooled["acc_weak"],
        "acc_strong": pooled["acc_strong"],
        "ece": {t: float(np.mean(v)) for t, v in eces.items()},
        "baselines": baselines(table, weak, strong),
        "fold_mean": {
            **{key: mean(per_fold, key) for key in keys},
            "baselines": {name: {key: mean(rows, key) for key in keys} for name, rows in base.items()},
        },
        "per_fold": per_fold,
    }
