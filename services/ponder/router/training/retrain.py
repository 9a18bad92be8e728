"""Training from traffic: the outcome log (Redis stream) joined with feedback.

Each answered request names the pool that served it; feedback says whether
the answer was right. So every labelled record teaches one target (its pool),
and the classifier gets one output per pool, trained on that pool's rows.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ponder.router import outcome_schema as S
from ponder.router.classifiers.base import Classifier, build_classifier
from ponder.router.training.outcomes import OutcomeError

BATCH = 1000


@dataclasses.dataclass
class OutcomeLog:
    prompts: list[str]
    pools: list[str]
    correct: list[bool]
    records: int
    source: str

    @property
    def labelled(self) -> int:
        return len(self.prompts)

    def per_pool(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.pools:
            out[p] = out.get(p, 0) + 1
        return out


def read_outcome_log(client: Any, stream: str = S.OUTCOME_STREAM, feedback_key: str = S.FEEDBACK_HASH) -> OutcomeLog:
    """Read every stream entry with status ok and feedback (sync redis client), oldest first."""
    prompts: list[str] = []
    pools: list[str] = []
    correct: list[bool] = []
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
            prompts.append(r.prompt)
            pools.append(r.pool)
            correct.append(ok)
        last = entries[-1][0]
        last = last.decode() if isinstance(last, bytes) else last
        start = "(" + last
        if len(entries) < BATCH:
            break
    return OutcomeLog(prompts, pools, correct, records, f"redis stream {stream!r}")


def train_from_log(log: OutcomeLog, classifier: str = "hashed-gbt", params: dict[str, Any] | None = None,
                   min_rows: int = 50) -> Classifier:
    """One target per pool with at least ``min_rows`` labelled records holding both outcomes."""
    if log.labelled == 0:
        raise OutcomeError(log.source, f"no records with feedback among {log.records} records")
    pools = np.array(log.pools)
    y = np.array(log.correct, dtype=np.float64)
    labels: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}
    for pool in sorted(set(log.pools)):
        mask = pools == pool
        n, pos = int(mask.sum()), int(y[mask].sum())
        if n < min_rows:
            skipped[pool] = f"{n} labelled records < min_rows {min_rows}"
        elif pos in (0, n):
            skipped[pool] = f"only one class (all {'correct' if pos else 'wrong'})"
        else:
            labels[pool] = np.where(mask, y, np.nan)
    if not labels:
        why = "; ".join(f"{p}: {r}" for p, r in skipped.items())
        raise OutcomeError(log.source, f"no pool has enough usable feedback ({why})", column=S.POOL)
    clf = build_classifier(classifier, params).fit(log.prompts, labels)
    clf.report["skipped_pools"] = skipped
    clf.report["records"] = log.records
    return clf
