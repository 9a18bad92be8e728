"""``vote``: hand a decomposed task to the voting workers (MAKER's first-to-ahead-by-k).

The router does not sample itself: the voting service draws every step's
samples from the planned pool and reports the winner of each step, which the
stream forwards as one delta per step, and a summary with the measured cost.
"""
from __future__ import annotations

from typing import AsyncIterator

import grpc

from ponder.common.errors import InvalidArgument, PonderError, PoolUnavailable
from ponder.router.clients import split_field
from ponder.router.strategies.base import StreamDelta
from ponder.router.types import Answer, Plan, Request
from ponder.v1 import voting_pb2


class VotingFailed(PonderError):
    """The voting run stopped before the task finished (step cap, pool down after retries)."""

    code = grpc.StatusCode.ABORTED

    def __init__(self, summary: voting_pb2.SolveSummary):
        self.failed_step = summary.failed_step if summary.HasField("failed_step") else None
        super().__init__(
            f"task {summary.task!r} failed at step {self.failed_step} after {summary.steps_completed} "
            f"of {summary.steps_total} steps: {summary.error}"
        )


class Vote:
    name = "vote"

    def __init__(self, client):
        self.client = client  # ponder.voting.client.VotingClient

    async def run(
        self, req: Request, plan: Plan, timeout_s: float, stream: bool
    ) -> AsyncIterator[StreamDelta | Answer]:
        task = voting_pb2.SolveRequest()
        task.CopyFrom(req.task)
        task.request_id = task.request_id or req.request_id
        if not task.sampler:
            task.sampler = f"pool:{plan.pool}"
        summary = None
        try:
            async for ev in self.client.events(task, timeout_s):
                if ev.HasField("step"):
                    if stream:
                        yield StreamDelta(f"{ev.step.index}: {ev.step.winner}\n", 0, False)
                else:
                    summary = ev.summary
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.INVALID_ARGUMENT:
                field, problem = split_field(e.details() or "")
                raise InvalidArgument(f"task.{field}" if field else "task", problem) from None
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                raise PoolUnavailable("voting", e.details() or "voting service unreachable") from None
            raise
        if summary is None or not summary.success:
            raise VotingFailed(summary or voting_pb2.SolveSummary(error="no summary"))
        yield Answer(
            text=summary.answer,
            finish_reason="stop",
            samples=[],
            model=summary.sampler,
            simulated=summary.simulated,
            ttft_ms=0.0,
            compute_units=summary.compute_units,
            sample_count=summary.total_samples,
            task_summary=summary,
        )
