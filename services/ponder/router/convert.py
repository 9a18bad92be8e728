"""Domain -> proto for the router's responses (pure)."""
from __future__ import annotations

from ponder.router.types import Answer, Candidate, Plan
from ponder.v1 import common_pb2, router_pb2


def candidate_to_proto(c: Candidate) -> common_pb2.PlanCandidate:
    return common_pb2.PlanCandidate(
        pool=c.pool, strategy=c.strategy, samples=c.samples, thinking_budget=c.thinking_budget,
        expected_accuracy=c.expected_accuracy, expected_compute_units=c.expected_compute_units,
        expected_latency_ms=c.expected_latency_ms, score=c.score, feasible=c.feasible, note=c.note, clamped=c.clamped,
    )


def plan_to_proto(p: Plan, with_candidates: bool = True) -> common_pb2.Plan:
    """The plan; ``with_candidates`` False leaves out the alternatives (answers carry only the choice)."""
    return common_pb2.Plan(
        pool=p.pool,
        strategy=p.strategy,
        samples=p.samples,
        thinking_budget=p.thinking_budget,
        expected_compute_units=p.expected_compute_units,
        expected_latency_ms=p.expected_latency_ms,
        policy=p.policy,
        reason=p.reason,
        candidates=[candidate_to_proto(c) for c in p.candidates] if with_candidates else [],
        context_id=p.context_id,
        expected_accuracy=p.expected_accuracy,
        clamped=p.clamped,
    )


def response_to_proto(request_id: str, plan: Plan, answer: Answer, usage: common_pb2.Usage) -> router_pb2.GenerateResponse:
    resp = router_pb2.GenerateResponse(
        request_id=request_id,
        text=answer.text,
        plan=plan_to_proto(plan, with_candidates=False),
        usage=usage,
        finish_reason=answer.finish_reason,
        model=answer.model,
        simulated=answer.simulated,
        samples=[s.text for s in answer.samples] if len(answer.samples) > 1 else [],
    )
    if answer.task_summary is not None:
        resp.task_summary.CopyFrom(answer.task_summary)
    return resp


def plan_to_dict(p: Plan) -> dict:
    """The plan as the outcome log stores it (candidates left out)."""
    return {
        "pool": p.pool, "strategy": p.strategy, "samples": p.samples, "thinking_budget": p.thinking_budget,
        "expected_compute_units": p.expected_compute_units, "expected_latency_ms": p.expected_latency_ms,
        "expected_accuracy": p.expected_accuracy, "policy": p.policy, "reason": p.reason,
        "context_id": p.context_id, "clamped": p.clamped,
    }


def breaker_to_proto(b, now_unix_s: float | None = None) -> router_pb2.BreakerState:
    """A ``resilience.BreakerSnapshot`` as the Status message; ``since_unix_s`` is 0 for a breaker closed since start."""
    import time

    now = time.time() if now_unix_s is None else now_unix_s
    return router_pb2.BreakerState(
        state=b.state, consecutive_failures=b.failures,
        since_unix_s=0.0 if b.since_s_ago is None else round(now - b.since_s_ago, 3),
        retry_after_s=round(b.retry_after_s, 3), opened_total=b.opened_total)
