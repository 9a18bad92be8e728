"""``vote``: hand a decomposed task to the voting workers (MAKER's first-to-ahead-by-k).

Offered only for task requests, on every pool (the scorer picks which pool
samples the steps). The router does not sample itself: the voting service
draws every step's samples from the planned pool and reports the winner of
each step, which the stream forwards as one delta per step, and a summary with
the measured cost.

Planning estimate. With s steps (the task's, or ``voting.max_steps``), a
per-step success p (``voting.p``, else the prior ``STEP_ACCURACY_PRIOR``) and
k (``voting.k``, else the smallest k reaching ``voting.target_success``), a
step takes E[samples] = k/(2p−1)·(1−r^k)/(1+r^k) samples with r = (1−p)/p
(gambler's ruin); calibration adds its samples when neither p nor k is given. Each
sample is priced at the step prompt's tokens and the step's output allowance.
Expected accuracy is the whole task's success (1 + r^k)^−s.
"""
from __future__ import annotations

import math
from typing import AsyncIterator

import grpc

from ponder.common.config import PoolConfig
from ponder.common.errors import Aborted, FailedPrecondition, InvalidArgument, PoolUnavailable, split_field
from ponder.router.catalog import estimate_tokens
from ponder.router.strategies.base import Gains, StreamDelta, Strategy
from ponder.router.types import Answer, Candidate, Plan, Request
from ponder.v1 import voting_pb2
from ponder.voting import kchoice
from ponder.voting.convert import config_from_proto, task_from_proto

STEP_ACCURACY_PRIOR = 0.9


class VotingUnavailable(FailedPrecondition):
    def __init__(self):
        super().__init__("task: this router has no voting service (voting.enabled is false and no voting.address)")


class VotingFailed(Aborted):
    """The voting run stopped before the task finished (step cap, pool down after retries)."""

    def __init__(self, summary: voting_pb2.SolveSummary):
        self.failed_step = summary.failed_step if summary.HasField("failed_step") else None
        super().__init__(
            f"task {summary.task!r} failed at step {self.failed_step} after {summary.steps_completed} "
            f"of {summary.steps_total} steps: {summary.error}"
        )


def _prefixed(e: InvalidArgument) -> InvalidArgument:
    return InvalidArgument(e.field if e.field.startswith("task") else f"task.{e.field}", e.problem)


class Vote(Strategy):
    name = "vote"

    def __init__(self, client=None):
        self.client = client  # ponder.voting.client.VotingClient, or None when the router has no voting service

    def _shape(self, req: Request) -> tuple[int, int, int, float, int, int]:
        """(steps, k, total samples, task success, step prompt tokens, step output tokens) for the task."""
        try:
            task = task_from_proto(req.task)
            cfg = config_from_proto(req.task)
        except InvalidArgument as e:
            raise _prefixed(e) from None
        steps = min(task.total_steps(), cfg.max_steps or task.total_steps())
        first = task.prompt(task.initial_state(), 0)
        out_tokens = cfg.max_output_tokens or first.max_tokens
        p = cfg.p if cfg.p is not None else STEP_ACCURACY_PRIOR
        k = cfg.k or kchoice.choose_k(p, steps, cfg.target_success, "task.voting.p", "task.voting.target_success")
        per_step = kchoice.expected_samples_per_step(p, k)
        calibrates = cfg.p is None and cfg.k is None  # the workers estimate p first only when neither is given
        calibration = cfg.calibration_steps * cfg.calibration_samples_per_step if calibrates else 0
        total = math.ceil(steps * per_step) + calibration
        return steps, k, total, kchoice.task_success(p, k, steps), estimate_tokens(len(first.text)), out_tokens

    def candidates(self, req: Request, pool: PoolConfig, catalog) -> list[Candidate]:
        if req.task is None:
            return []
        if self.client is None:
            raise VotingUnavailable()
        steps, k, total, success, prompt_tokens, out_tokens = self._shape(req)
        c = catalog.estimate(req, pool.name, self.name, total, 0, prompt_tokens, out_tokens)
        c.expected_accuracy = round(success, 6)
        c.note = f"{steps} steps, k={k}, ~{total} samples"
        return [c]

    def accuracy(self, cand: Candidate, p: float, gains: Gains) -> tuple[float, str]:
        return cand.expected_accuracy, "task success at the planned k"

    async def run(self, req: Request, plan: Plan, pools, timeout_s: float, stream: bool) -> AsyncIterator[StreamDelta | Answer]:
        if self.client is None:
            raise VotingUnavailable()
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
