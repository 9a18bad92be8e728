"""Offline evaluation of a cascade on outcome tables that carry the weak model's responses.

The cascade asks the weak model first, scores its answer with
``ponder.router.confidence.ConfidenceScorer`` and escalates the least
confident answers to the strong model. Escalating the share e of prompts
costs c_w + e·c_s per prompt (the weak call is always paid); on the
normalised cost axis of the prompt-only router (0: every prompt to the weak
model alone, c_w; 1: every prompt to the strong one, c_s) that is
x = e·c_s / (c_s - c_w). ``cascade_curve`` is the cascade's accuracy at each
x in [0, 1] (it reaches e = 1 - c_w/c_s at x = 1), so its APGR and CPT count
the weak call's cost and compare directly with the prompt-only router's.

``cross_validate_cascade`` scores every row with a scorer fitted on the
other folds (the same folds as ``evaluate.assign_folds``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ponder.router.confidence import FEATURE_NAMES, ConfidenceScorer, feature_matrix
from ponder.router.training import metrics as M
from ponder.router.training.evaluate import _source, assign_folds
from ponder.router.training.outcomes import OutcomeError, OutcomeTable

RESPONSE_SUFFIX = "_response"


def response_column(weak: str) -> str:
    """The column holding the weak model's responses (RouteLLM's naming: ``<model>_response``)."""
    return weak + RESPONSE_SUFFIX


def cascade_curve(confidence: np.ndarray, weak: np.ndarray, strong: np.ndarray, cost_weak: float,
                  cost_strong: float) -> M.Curve:
    """Accuracy against normalised cost when the least confident answers escalate first.

    MetricUndefined when cost_strong <= cost_weak or a cost is not positive.
    """
    if not (0 < cost_weak < cost_strong):
        raise M.MetricUndefined(f"need 0 < weak cost < strong cost, got {cost_weak} and {cost_strong}")
    by_share = M.router_curve(-np.asarray(confidence, dtype=np.float64), weak, strong)
    n = len(by_share.x) - 1
    x = np.arange(n + 1) / n
    share = x * (cost_strong - cost_weak) / cost_strong
    return M.Curve(x=x, acc=np.interp(share, by_share.x, by_share.acc), acc_weak=by_share.acc_weak,
                   acc_strong=by_share.acc_strong)


def cross_validate_cascade(table: OutcomeTable, weak: str, strong: str, costs: tuple[float, float],
                           k: int = 5, group_by_file: bool = False, seed: int = 0,
                           responses: str | None = None, keep_scores: bool = False,
                           prompt_probs: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Cascade metrics from out-of-fold confidence on the weak model's responses.

    ``table.texts`` must hold the response column (``responses``, default
    ``<weak>_response``); OutcomeError names the file and column otherwise.
    ``prompt_probs``: the prompt-only router's out-of-fold (P(weak right),
    P(strong right)) per row; given, the weak one is the scorer's prior and
    the escalation order is the expected gain P(strong right) - confidence
    (``confidence.should_escalate``'s rule), else the confidence alone.
    Returns ``apgr``, ``cpt50``, ``cpt80`` with the weak call's cost counted,
    the same metrics by escalation share alone (``by_share``), the scorer's
    out-of-fold ECE and the mean feature weights.
    """
    col = responses or response_column(weak)
    if col not in table.texts:
        raise OutcomeError(_source(table), "no responses of the weak model loaded (needed for --cascade)", column=col)
    answers = table.texts[col]
    priors = list(prompt_probs[0]) if prompt_probs is not None else None
    x = feature_matrix(table.prompts, answers, priors=priors)
    w, s = table.labels(weak), table.labels(strong)
    fold = assign_folds(table, k, group_by_file, seed)
    conf = np.zeros(len(table))
    weights = []
    for j in range(k):
        tr, te = fold != j, fold == j
        scorer = ConfidenceScorer().fit(x[tr], w[tr], seed=seed)
        conf[te] = scorer.predict_features(x[te])
        weights.append(scorer.w)
    # cascade_curve escalates the least confident first: pass minus the escalation gain.
    order = conf - prompt_probs[1] if prompt_probs is not None else conf
    curve = cascade_curve(order, w, s, *costs)
    out: dict[str, Any] = {
        "n": len(table), "folds": k, "costs": list(costs), "responses": col,
        **{key: v for key, v in M.summary(curve).items() if key in ("apgr", "cpt50", "cpt80")},
        "order": "p_strong - confidence" if prompt_probs is not None else "confidence",
        "by_share": {key: v for key, v in M.summary(M.router_curve(-order, w, s)).items()
                     if key in ("apgr", "cpt50", "cpt80")},
        "confidence_ece": M.expected_calibration_error(conf, w),
        "weights": {n: round(float(v), 4) for n, v in zip(FEATURE_NAMES, np.mean(weights, axis=0))},
    }
    if keep_scores:
        out["confidence"] = conf
    return out


def fit_scorer(table: OutcomeTable, weak: str, responses: str | None = None, seed: int = 0) -> ConfidenceScorer:
    """A ``ConfidenceScorer`` of the weak model's answers fitted on every row, with no prompt-router prior
    (the live ``cascade`` strategy scores answers without one). OutcomeError names the file and column
    when the responses are missing; ValueError when every answer is right or every one wrong."""
    col = responses or response_column(weak)
    if col not in table.texts:
        raise OutcomeError(_source(table), "no responses of the weak model loaded (needed for a scorer)", column=col)
    x = feature_matrix(table.prompts, table.texts[col])
    scorer = ConfidenceScorer().fit(x, table.labels(weak), seed=seed)
    scorer.report.update({"weak": weak, "responses": col, "source": _source(table)})
    return scorer
