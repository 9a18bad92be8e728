"""Train, evaluate and cross-validate a weak/strong router on outcome tables.

The router's score for sending a prompt to the strong model is the expected
gain P(strong correct) - P(weak correct), both from one classifier with the
two model columns as targets; higher goes strong first. Baselines on the same
rows: ``random`` (coin-flip scores, mean over ``random_draws`` seeds) and
``length`` (longer prompts go strong first).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ponder.router.classifiers.base import Classifier, build_classifier
from ponder.router.training import metrics as M
from ponder.router.training.outcomes import OutcomeError, OutcomeTable, require_both_classes

DEFAULT_CLASSIFIER = "hashed-gbt"


def route_scores(clf: Classifier, texts: list[str], weak: str, strong: str) -> np.ndarray:
    p = clf.predict_proba(texts)
    return p[:, clf.targets.index(strong)] - p[:, clf.targets.index(weak)]


def _source(table: OutcomeTable) -> str:
    files = sorted(set(table.files))
    return files[0] if len(files) == 1 else f"{files[0]} (+{len(files) - 1} more files)"


def train(table: OutcomeTable, weak: str, strong: str, classifier: str = DEFAULT_CLASSIFIER,
          params: dict[str, Any] | None = None) -> Classifier:
    """Fit ``classifier`` with targets weak and strong; OutcomeError when a column has one class."""
    for col in (weak, strong):
        require_both_classes(table, col, _source(table))
    clf = build_classifier(classifier, params)
    return clf.fit(table.prompts, {weak: table.labels(weak), strong: table.labels(strong)})


def random_baseline(w: np.ndarray, s: np.ndarray, draws: int = 10, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    runs = [M.summary(M.router_curve(rng.random(len(w)), w, s)) for _ in range(draws)]
    return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}


def length_scores(texts: list[str]) -> np.ndarray:
    return np.array([len(t) for t in texts], dtype=np.float64)


def evaluate(clf: Classifier, table: OutcomeTable, weak: str, strong: str) -> dict[str, Any]:
    """Router metrics plus per-target calibration error on ``table``."""
    w, s = table.labels(weak), table.labels(strong)
    probs = clf.predict_proba(table.prompts)
    scores = probs[:, clf.targets.index(strong)] - probs[:, clf.targets.index(weak)]
    out: dict[str, Any] = {"n": len(table), **M.summary(M.router_curve(scores, w, s))}
    out["oracle_apgr"] = M.apgr(M.oracle_curve(w, s))
    out["ece"] = {t: M.expected_calibration_error(probs[:, j], table.labels(t)) for j, t in enumerate(clf.targets)}
    out["baselines"] = {
        "random": random_baseline(w, s),
        "length": M.summary(M.router_curve(length_scores(table.prompts), w, s)),
    }
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
                   seed: int = 0, keep_scores: bool = False) -> dict[str, Any]:
    """K-fold CV: every row scored by the model trained without its fold.

    The headline ``apgr``, ``cpt50`` and ``cpt80`` are the metrics of the whole
    table routed by those out-of-fold scores (the calibrated probabilities make
    the folds' scores comparable), the same footing as the metrics of a whole
    outcome table; ``baselines`` (``random``, ``length``, ``oracle``) are on the
    whole table too. ``fold_mean`` has the same metrics and baselines computed
    within each held-out fold and averaged: every fold normalised by its own
    weak and strong accuracy, which a grouped split makes differ by subject.
    Also n, per-fold figures and mean ECE per target. With ``keep_scores`` also
    ``oof_scores`` and ``oof_probs`` ({target: array}).
    """
    fold = assign_folds(table, k, group_by_file, seed)
    w_all, s_all = table.labels(weak), table.labels(strong)
    oof = np.zeros(len(table))
    oof_probs = {weak: np.zeros(len(table)), strong: np.zeros(len(table))}
    per_fold: list[dict[str, Any]] = []
    base: dict[str, list[dict[str, float]]] = {"random": [], "length": [], "oracle": []}
    eces: dict[str, list[float]] = {weak: [], strong: []}
    for j in range(k):
        te = np.flatnonzero(fold == j)
        tr = np.flatnonzero(fold != j)
        test, train_t = table.subset(te), table.subset(tr)
        clf = train(train_t, weak, strong, classifier, params)
        res = evaluate(clf, test, weak, strong)
        if keep_scores:
            probs = clf.predict_proba(test.prompts)
            for t in (weak, strong):
                oof_probs[t][te] = probs[:, clf.targets.index(t)]
        oof[te] = res.pop("_scores")
        for t, v in res["ece"].items():
            eces[t].append(v)
        base["random"].append(res["baselines"]["random"])
        base["length"].append(res["baselines"]["length"])
        w, s = test.labels(weak), test.labels(strong)
        base["oracle"].append(M.summary(M.oracle_curve(w, s)))
        per_fold.append({
            "n": len(test), "files": len(set(test.files)), "apgr": res["apgr"], "cpt50": res["cpt50"],
            "cpt80": res["cpt80"], "acc_weak": res["acc_weak"], "acc_strong": res["acc_strong"],
        })

    def mean(rows: list[dict[str, float]], key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    keys = ("apgr", "cpt50", "cpt80")
    pooled = M.summary(M.router_curve(oof, w_all, s_all))
    extra = {"oof_scores": oof, "oof_probs": oof_probs} if keep_scores else {}
    return {
        **extra,
        "n": len(table),
        "folds": k,
        "group_by_file": group_by_file,
        "classifier": classifier,
        **{key: pooled[key] for key in keys},
        "acc_weak": pooled["acc_weak"],
        "acc_strong": pooled["acc_strong"],
        "ece": {t: float(np.mean(v)) for t, v in eces.items()},
        "baselines": {
            "random": random_baseline(w_all, s_all),
            "length": M.summary(M.router_curve(length_scores(table.prompts), w_all, s_all)),
            "oracle": M.summary(M.oracle_curve(w_all, s_all)),
        },
        "fold_mean": {
            **{key: mean(per_fold, key) for key in keys},
            "baselines": {name: {key: mean(rows, key) for key in keys} for name, rows in base.items()},
        },
        "per_fold": per_fold,
    }
