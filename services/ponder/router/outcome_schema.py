"""The outcome log's record format, shared by its writer (the router) and its
readers (``ponder router retrain``, the budget replay).

- One Redis stream entry per answered request, key ``redis.outcome_stream``
  (default ``ponder:outcomes``), with the fields below; ``plan`` and ``usage``
  are JSON objects, the rest plain strings.
- Feedback lives apart in the hash ``ponder:feedback``: request_id → JSON
  ``{"correct": bool, "score": float}`` (either key may be absent). A record
  counts as correct when ``correct`` is true, or, without it, when
  ``score >= 0.5``.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

OUTCOME_STREAM = "ponder:outcomes"
FEEDBACK_HASH = "ponder:feedback"

REQUEST_ID = "request_id"
PROMPT = "prompt"
POOL = "pool"
STRATEGY = "strategy"
PLAN = "plan"
USAGE = "usage"
STATUS = "status"
TS = "ts"
LATENCY_MS = "latency_ms"
LABELS = "labels"
ERROR = "error"
TENANT = "tenant"
FIELDS = (REQUEST_ID, PROMPT, POOL, STRATEGY, PLAN, USAGE, STATUS)

STATUS_OK = "OK"  # the gRPC status code name, as the router writes it
USAGE_COMPUTE_UNITS = "compute_units"
FEEDBACK_CORRECT = "correct"
FEEDBACK_SCORE = "score"
SCORE_CORRECT_AT = 0.5


@dataclasses.dataclass(frozen=True)
class OutcomeRecord:
    request_id: str
    prompt: str
    pool: str
    strategy: str
    plan: dict[str, Any]
    usage: dict[str, Any]
    status: str

    @property
    def compute_units(self) -> float | None:
        v = self.usage.get(USAGE_COMPUTE_UNITS)
        return float(v) if isinstance(v, (int, float)) else None


def encode_outcome(request_id: str, prompt: str, pool: str, strategy: str, plan: Mapping[str, Any],
                   usage: Mapping[str, Any], status: str = STATUS_OK, *, ts: float | None = None,
                   latency_ms: float | None = None, labels: Mapping[str, str] | None = None,
                   error: str = "", tenant: str = "") -> dict[str, str]:
    """Stream fields for XADD; ``ts`` (unix seconds), ``latency_ms``, ``labels``, ``error`` and ``tenant`` are optional."""
    out = {
        REQUEST_ID: request_id, PROMPT: prompt, POOL: pool, STRATEGY: strategy,
        PLAN: json.dumps(dict(plan), sort_keys=True), USAGE: json.dumps(dict(usage), sort_keys=True), STATUS: status,
    }
    if ts is not None:
        out[TS] = f"{ts:.3f}"
    if latency_ms is not None:
        out[LATENCY_MS] = f"{latency_ms:.3f}"
    if labels is not None:
        out[LABELS] = json.dumps(dict(labels), sort_keys=True)
    if error:
        out[ERROR] = error
    if tenant:
        out[TENANT] = tenant
    return out


def _s(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _json(v: Any) -> dict[str, Any]:
    try:
        d = json.loads(_s(v))
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def decode_outcome(fields: Mapping[Any, Any]) -> OutcomeRecord:
    """A stream entry (bytes or str keys) → OutcomeRecord; absent fields become empty."""
    f = {_s(k): v for k, v in fields.items()}
    return OutcomeRecord(
        request_id=_s(f.get(REQUEST_ID, "")), prompt=_s(f.get(PROMPT, "")), pool=_s(f.get(POOL, "")),
        strategy=_s(f.get(STRATEGY, "")), plan=_json(f.get(PLAN, "{}")), usage=_json(f.get(USAGE, "{}")),
        status=_s(f.get(STATUS, "")),
    )


def encode_feedback(correct: bool | None = None, score: float | None = None) -> str:
    d: dict[str, Any] = {}
    if correct is not None:
        d[FEEDBACK_CORRECT] = bool(correct)
    if score is not None:
        d[FEEDBACK_SCORE] = float(score)
    return json.dumps(d, sort_keys=True)


def feedback_correct(value: Any) -> bool | None:
    """A feedback hash value → correct or not; None when it says neither."""
    d = _json(value)
    c = d.get(FEEDBACK_CORRECT)
    if isinstance(c, bool):
        return c
    s = d.get(FEEDBACK_SCORE)
    if isinstance(s, (int, float)) and not isinstance(s, bool):
        return float(s) >= SCORE_CORRECT_AT
    return None
