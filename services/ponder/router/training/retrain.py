"""Training from traffic: the outcome log (Redis stream) joined with feedback.

Each answered request names the pool that served it and how (strategy and
plan); feedback says whether the answer was right. A record teaches only what
its answer measured:

- ``single`` (one sample, thinking budget 0): one plain sample of its pool, so
  a label for that pool's classifier target. Only these train the classifier;
  it gets one output per pool, trained on that pool's single records (with
  ``guard``, default ``evaluate.DEFAULT_GUARD``, also the no-harm guard of
  ``classifiers.guard`` on the least and the most accurate pool; ``fit_pools``).
- ``think`` with a thinking budget T > 0: fits the pool's thinking gain g of
  the ``difficulty`` policy's model logit(p_T) = logit(p) + g·log2(1 + T/ref),
  with p from the newly trained classifier on the record's prompt, by maximum
  likelihood of the labels (g ≥ 0; bounded search, the negative
  log-likelihood is convex in g; scipy's bounded scalar minimiser). A pool needs ``min_think_rows`` such records
  with both outcomes and a classifier target, else it gets no fit (the policy
  keeps its ``think_logit_gain`` prior). Fits go to
  ``report["think_logit_gain"] = {pool: {"gain", "n", "ref_tokens"}}``,
  saved with the model.
- ``softcot`` (one sample with soft thoughts): fits the SoftCoT pool's
  soft-thought gain g of logit(p_softcot) = logit(p) + g against the same
  classifier's p for that pool (``training.softcot_gain``; g may be negative).
  Fits go to ``report["softcot_logit_gain"]``.
- everything else (``best_of_n``, votes, single or think plans of another
  shape) is skipped: a vote's correctness is neither one plain sample's nor
  a thinking sample's. The counts per kind are in ``OutcomeLog.kind_counts()``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ponder.router import outcome_schema as S
from ponder.router.classifiers.base import Classifier, build_classifier
from ponder.router.policies.difficulty import DifficultyParams
from ponder.router.training.evaluate import DEFAULT_GUARD
from ponder.router.training.outcomes import OutcomeError
from ponder.router.training.softcot_gain import MIN_SOFTCOT_ROWS, fit_softcot_gains
from ponder.router.training.softcot_gain import REPORT_KEY as SOFTCOT_REPORT_KEY

BATCH = 1000
SINGLE, THINK, SKIPPED, SOFTCOT = "single", "think", "skipped", "softcot"
THINK_REF_TOKENS: int = DifficultyParams.model_fields["think_ref_tokens"].default
MIN_THINK_ROWS = 30
MAX_GAIN = 20.0  # upper end of the gain search
_P_CLIP = 1e-6  # as thinking_accuracy clips p


def record_kind(strategy: str, plan: dict[str, Any]) -> tuple[str, int]:
    """(single | think | skipped, thinking budget) of one outcome record."""
    def _int(key: str, default: int) -> int:
        v = plan.get(key, default)
        return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else -1

    budget, samples = _int("thinking_budget", 0), _int("samples", 1)
    if strategy == SINGLE and budget == 0 and samples == 1:
        return SINGLE, 0
    if strategy == THINK and budget > 0 and samples == 1:
        return THINK, budget
    if strategy == SOFTCOT and budget == 0 and samples == 1:
        return SOFTCOT, 0
    return SKIPPED, max(budget, 0)


@dataclasses.dataclass
class OutcomeLog:
    """Labelled records (status ok, with feedback), aligned lists; ``kinds`` from ``record_kind``."""

    prompts: list[str]
    pools: list[str]
    correct: list[bool]
    records: int
    source: str
    kinds: list[str] = dataclasses.field(default_factory=list)
    thinking_budgets: list[int] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.kinds:  # built without kinds: plain single samples
            self.kinds = [SINGLE] * len(self.prompts)
        if not self.thinking_budgets:
            self.thinking_budgets = [0] * len(self.prompts)

    @property
    def labelled(self) -> int:
        return len(self.prompts)

    def kind_counts(self) -> dict[str, int]:
        """Labelled records per kind: single (train the classifier), think (fit the gain), skipped."""
        out = {SINGLE: 0, THINK: 0, SKIPPED: 0}
        for k in self.kinds:
            out[k] = out.get(k, 0) + 1
        return out

    def per_pool(self, kind: str | None = SINGLE) -> dict[str, int]:
        """Labelled records per pool, of one kind (default single; None: all)."""
        out: dict[str, int] = {}
        for p, k in zip(self.pools, self.kinds):
            if kind is None or k == kind:
                out[p] = out.get(p, 0) + 1
        return out


def read_outcome_log(client: Any, stream: str = S.OUTCOME_STREAM, feedback_key: str = S.FEEDBACK_HASH) -> OutcomeLog:
    """Read every stream entry with status ok and feedback (sync redis client), oldest first."""
    prompts: list[str] = []
    pools: list[str] = []
    correct: list[bool] = []
    kinds: list[str] = []
    budgets: list[int] = []
    records = 0
    start = "-"
    while True:
        entries = client.xrange(stream, min=start, max="+", count=BATCH)
        if not entries:
            break
        recs = [S.decode_outcome(fields) for _, fields in entries]
        records += len(recs)
        ids = [r.request_id for r in recs]
        fb = client.hmget(feedback_key, ids) if ids else []
        for r, value in zip(recs, fb):
            if r.status != S.STATUS_OK or not r.prompt or not r.pool or value is None:
                continue
            ok = S.feedback_correct(value)
            if ok is None:
                continue
            kind, budget = record_kind(r.strategy, r.plan)
            prompts.append(r.prompt)
            pools.append(r.pool)
            correct.append(ok)
            kinds.append(kind)
            budgets.append(budget)
        last = entries[-1][0]
        last = last.decode() if isinstance(last, bytes) else last
        start = "(" + last
        if len(entries) < BATCH:
            break
    return OutcomeLog(prompts, pools, correct, records, f"redis stream {stream!r}", kinds, budgets)


def think_nll(gain: float, p: np.ndarray, budgets: np.ndarray, y: np.ndarray, ref_tokens: int) -> float:
    """Negative log-likelihood of labels y under logit(p_T) = logit(p) + gain·log2(1 + T/ref)."""
    p = np.clip(p, _P_CLIP, 1 - _P_CLIP)
    z = np.log(p / (1 - p)) + gain * np.log2(1 + budgets / ref_tokens)
    # -[y log σ(z) + (1-y) log σ(-z)] = softplus(z) - y z
    return float(np.sum(np.logaddexp(0.0, z) - y * z))


def fit_think_gain(p: np.ndarray, budgets: np.ndarray, y: np.ndarray, ref_tokens: int = THINK_REF_TOKENS,
                   max_gain: float = MAX_GAIN, tol: float = 1e-6) -> float:
    """Maximum-likelihood gain g in [0, max_gain]: ``scipy.optimize.minimize_scalar`` (bounded Brent)
    on the convex NLL, compared with the bound g = 0 (common: thinking does not help)."""
    from scipy.optimize import minimize_scalar

    p, budgets, y = (np.asarray(a, dtype=np.float64) for a in (p, budgets, y))
    res = minimize_scalar(lambda g: think_nll(g, p, budgets, y, ref_tokens), bounds=(0.0, float(max_gain)),
                          method="bounded", options={"xatol": tol})
    g = float(res.x)
    return 0.0 if think_nll(0.0, p, budgets, y, ref_tokens) <= think_nll(g, p, budgets, y, ref_tokens) else g


def _fit_think_gains(log: OutcomeLog, clf: Classifier, ref_tokens: int, min_think_rows: int
                     ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    kinds, pools = np.array(log.kinds), np.array(log.pools)
    y_all = np.array(log.correct, dtype=np.float64)
    budgets_all = np.array(log.thinking_budgets, dtype=np.float64)
    fits: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for pool in sorted(set(pools[kinds == THINK].tolist())):
        idx = np.flatnonzero((kinds == THINK) & (pools == pool))
        n, pos = len(idx), int(y_all[idx].sum())
        if pool not in clf.targets:
            skipped[pool] = "no classifier target for the pool (too few single records)"
        elif n < min_think_rows:
            skipped[pool] = f"{n} think records < min_think_rows {min_think_rows}"
        elif pos in (0, n):
            skipped[pool] = f"only one class (all {'correct' if pos else 'wrong'})"
        else:
            p = clf.predict_proba([log.prompts[i] for i in idx])[:, clf.targets.index(pool)]
            g = fit_think_gain(p, budgets_all[idx], y_all[idx], ref_tokens)
            fits[pool] = {"gain": round(g, 6), "n": n, "ref_tokens": ref_tokens}
    return fits, skipped


MIN_POOLS = 1  # one pool still informs the strategy choice; 2 when the model must rank pools
CV_FOLDS = 5
MIN_PAIRED = 20


def _single_labels(log: OutcomeLog, min_rows: int) -> tuple[list[str], dict[str, np.ndarray], dict[str, str]]:
    """(prompts, {pool: labels with NaN where another pool served}, {pool: why skipped}) of the single records."""
    counts = log.kind_counts()
    single = [i for i, k in enumerate(log.kinds) if k == SINGLE]
    if not single:
        raise OutcomeError(log.source, f"no single-sample records among {log.labelled} with feedback "
                           f"(think {counts[THINK]}, skipped {counts[SKIPPED]}); only they train the classifier",
                           column=S.STRATEGY)
    prompts = [log.prompts[i] for i in single]
    pools = np.array([log.pools[i] for i in single])
    y = np.array([log.correct[i] for i in single], dtype=np.float64)
    labels: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}
    for pool in sorted(set(pools.tolist())):
        mask = pools == pool
        n, pos = int(mask.sum()), int(y[mask].sum())
        if n < min_rows:
            skipped[pool] = f"{n} labelled single records < min_rows {min_rows}"
        elif pos in (0, n):
            skipped[pool] = f"only one class (all {'correct' if pos else 'wrong'})"
        else:
            labels[pool] = np.where(mask, y, np.nan)
    return prompts, labels, skipped


def _refuse_if_thin(log: OutcomeLog, labels: dict[str, np.ndarray], skipped: dict[str, str], min_pools: int) -> None:
    if len(labels) >= min_pools:
        return
    why = "; ".join(f"{p}: {r}" for p, r in skipped.items()) or "no other pool has records"
    have = ", ".join(sorted(labels)) or "none"
    raise OutcomeError(log.source, f"too few labelled rows per pool to retrain: {len(labels)} usable pool(s) "
                       f"({have}), need {min_pools} to rank pools ({why})", column=S.POOL)


def guard_roles(labels: dict[str, np.ndarray]) -> tuple[str, str] | None:
    """(weak, strong) for the no-harm guard: the pools with the lowest and highest labelled accuracy; None
    with fewer than two pools."""
    if len(labels) < 2:
        return None
    rate = {p: float(np.nanmean(y)) for p, y in labels.items()}
    order = sorted(rate, key=lambda p: (rate[p], p))
    return order[0], order[-1]


def fit_pools(classifier: str, params: dict[str, Any] | None, prompts: list[str], labels: dict[str, np.ndarray],
              guard: bool) -> Classifier:
    """A classifier fitted on the pools' labels; with ``guard`` and two or more pools, with the no-harm guard
    on the least and most accurate pool (``Classifier.fit_guarded``)."""
    clf = build_classifier(classifier, params)
    roles = guard_roles(labels) if guard else None
    return clf.fit_guarded(prompts, labels, roles) if roles is not None else clf.fit(prompts, labels)


def cv_report(log: OutcomeLog, classifier: str = "hashed-gbt", params: dict[str, Any] | None = None,
              min_rows: int = 50, roles: tuple[str, str] | None = None, folds: int = CV_FOLDS,
              seed: int = 0, guard: bool = DEFAULT_GUARD) -> dict[str, Any]:
    """Cross-validated quality of what ``train_from_log`` would train, from the log alone.

    Folds group records by prompt text (a prompt answered twice never sits on
    both sides). Per pool: out-of-fold AUC and ECE of P(correct). APGR needs
    both pools' outcomes on the same prompts: on the prompts the log has
    answered by both ``roles`` (weak, strong; default the pair of pools with
    the most such prompts, the less accurate one weak), routed by the
    out-of-fold P(strong) - P(weak); None with the reason when fewer than
    ``MIN_PAIRED`` such prompts or the strong pool is not more accurate.
    """
    from sklearn.metrics import roc_auc_score

    from ponder.router.training import metrics as M

    prompts, labels, _ = _single_labels(log, min_rows)
    n = len(prompts)
    uniq = {p: i for i, p in enumerate(dict.fromkeys(prompts))}
    group = np.array([uniq[p] for p in prompts])
    fold = np.random.default_rng(seed).permutation(len(uniq))[group] % folds
    oof = {p: np.full(n, np.nan) for p in labels}
    for j in range(folds):
        tr, te = np.flatnonzero(fold != j), np.flatnonzero(fold == j)
        fit_labels = {p: y[tr] for p, y in labels.items()
                      if np.nansum(y[tr]) > 0 and np.nansum(1 - y[tr]) > 0}
        if not len(te) or len(fit_labels) < len(labels):
            continue
        clf = fit_pools(classifier, params, [prompts[i] for i in tr], fit_labels, guard)
        probs = clf.predict_proba([prompts[i] for i in te])
        for p in labels:
            oof[p][te] = probs[:, clf.targets.index(p)]
    out: dict[str, Any] = {"folds": folds, "pools": {}}
    for p, y in labels.items():
        m = ~np.isnan(y) & ~np.isnan(oof[p])
        yy = y[m] > 0.5
        ok = m.any() and yy.any() and (~yy).any()
        out["pools"][p] = {"n": int(m.sum()), "auc": float(roc_auc_score(yy, oof[p][m])) if ok else None,
                           "ece": M.expected_calibration_error(oof[p][m], yy) if m.any() else None}
    # Paired prompts: the last outcome per (prompt, pool), with the out-of-fold probabilities of that row.
    last: dict[tuple[int, str], int] = {}
    for i in range(n):
        for p, y in labels.items():
            if not np.isnan(y[i]) and not np.isnan(oof[p][i]):
                last[(group[i], p)] = i
    pools = sorted(labels)
    if roles is None:
        pairs = [(a, b) for a in pools for b in pools if a < b]
        count = {(a, b): sum((g, a) in last and (g, b) in last for g in range(len(uniq))) for a, b in pairs}
        roles = max(count, key=count.get) if count else None
    out["apgr"], out["paired"] = None, 0
    if roles is None or any(r not in labels for r in roles):
        out["apgr_note"] = f"no pair of usable pools among {pools}"
        return out
    both = [g for g in range(len(uniq)) if (g, roles[0]) in last and (g, roles[1]) in last]
    out["paired"] = len(both)
    if len(both) < MIN_PAIRED:
        out["apgr_note"] = (f"{len(both)} prompts answered by both {roles[0]} and {roles[1]} < {MIN_PAIRED}; "
                            "APGR needs both pools' outcomes on the same prompts")
        return out
    ya = np.array([labels[roles[0]][last[(g, roles[0])]] for g in both]) > 0.5
    yb = np.array([labels[roles[1]][last[(g, roles[1])]] for g in both]) > 0.5
    pa = np.array([oof[roles[0]][last[(g, roles[0])]] for g in both])
    pb = np.array([oof[roles[1]][last[(g, roles[1])]] for g in both])
    weak, strong, w, s, score = (roles[0], roles[1], ya, yb, pb - pa) if ya.mean() <= yb.mean() else \
        (roles[1], roles[0], yb, ya, pa - pb)
    out["roles"] = {"weak": weak, "strong": strong}
    try:
        out["apgr"] = M.apgr(M.router_curve(score, w, s))
    except M.MetricUndefined as e:
        out["apgr_note"] = e.message
    return out


def train_from_log(log: OutcomeLog, classifier: str = "hashed-gbt", params: dict[str, Any] | None = None,
                   min_rows: int = 50, think_ref_tokens: int = THINK_REF_TOKENS,
                   min_think_rows: int = MIN_THINK_ROWS, min_pools: int = MIN_POOLS,
                   min_softcot_rows: int = MIN_SOFTCOT_ROWS, guard: bool = DEFAULT_GUARD) -> Classifier:
    """One target per pool with at least ``min_rows`` labelled single records holding both outcomes,
    then the thinking gain per pool from its think records (see the module docstring).

    OutcomeError (naming the source and the pool column) when there is no
    feedback, no single record, or fewer than ``min_pools`` pools have enough
    usable rows, with each skipped pool's reason.
    """
    if log.labelled == 0:
        raise OutcomeError(log.source, f"no records with feedback among {log.records} records")
    counts = log.kind_counts()
    prompts, labels, skipped = _single_labels(log, min_rows)
    _refuse_if_thin(log, labels, skipped, min_pools)
    clf = fit_pools(classifier, params, prompts, labels, guard)
    clf.report["skipped_pools"] = skipped
    clf.report["records"] = log.records
    clf.report["records_used"] = counts
    fits, think_skipped = _fit_think_gains(log, clf, think_ref_tokens, min_think_rows)
    clf.report["think_logit_gain"] = fits
    clf.report["think_gain_skipped"] = think_skipped
    sc_fits, sc_skipped = fit_softcot_gains(log.prompts, log.pools, log.correct, [k == SOFTCOT for k in log.kinds],
                                            clf, min_softcot_rows)
    clf.report[SOFTCOT_REPORT_KEY], clf.report["softcot_gain_skipped"] = sc_fits, sc_skipped
    return clf
