"""What the router learns after answering: correctness labels (the Feedback RPC) and realised cost.

Labels go to the feedback store beside the outcome log, where ``ponder router
retrain`` joins them with the outcome records. Realised compute units go to
the policy's budget controller, off the request path.
"""
from __future__ import annotations

import asyncio
import logging
import math

from ponder.common.errors import FailedPrecondition, InvalidArgument
from ponder.common.ids import check_request_id
from ponder.v1 import router_pb2

log = logging.getLogger(__name__)


class FeedbackUnavailable(FailedPrecondition):
    def __init__(self):
        super().__init__("this router has no outcome store (Redis) to record feedback in")


def parse_feedback(request: router_pb2.FeedbackRequest) -> tuple[str, bool | None, float | None]:
    """(request_id, correct, score) of a Feedback call; InvalidArgument naming the field."""
    if not request.request_id or len(request.request_id) > 128:
        raise InvalidArgument("request_id", "must be 1..128 chars")
    check_request_id("request_id", request.request_id)
    if not request.HasField("correct") and not request.HasField("score"):
        raise InvalidArgument("correct", "give correct or score (or both)")
    if request.HasField("score") and not (math.isfinite(request.score) and 0.0 <= request.score <= 1.0):
        raise InvalidArgument("score", f"must be in [0, 1], got {request.score}")
    return (
        request.request_id,
        request.correct if request.HasField("correct") else None,
        request.score if request.HasField("score") else None,
    )


class CostFeedback:
    """Feeds realised costs to a policy's budget controller in background tasks it keeps alive."""

    def __init__(self):
        self._tasks: set[asyncio.Task] = set()

    def observe(self, policy, compute_units: float) -> None:
        budget = policy.budget
        if budget is None:
            return
        task = asyncio.get_running_loop().create_task(budget.observe(compute_units))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("budget controller update failed: %s", task.exception())
