"""Proto <-> domain mapping for the voting service (no I/O)."""
from __future__ import annotations

from ponder.common.errors import InvalidArgument
from ponder.v1 import voting_pb2
from ponder.voting.solver import SolveConfig, StepResult, Summary
from ponder.voting.tasks import Task, make_task


def _opt(msg, field: str):
    return getattr(msg, field) if msg.HasField(field) else None


def task_from_proto(req: voting_pb2.SolveRequest) -> Task:
    if not req.task:
        raise InvalidArgument("task", "empty; known tasks: hanoi, addition")
    if req.task == "hanoi" and req.hanoi.disks <= 0:
        raise InvalidArgument("hanoi.disks", f"must be >= 1, got {req.hanoi.disks}")
    if req.task in ("addition", "add") and req.addition.digits <= 0:
        raise InvalidArgument("addition.digits", f"must be >= 1, got {req.addition.digits}")
    return make_task(
        req.task, disks=req.hanoi.disks, digits=req.addition.digits,
        a=req.addition.a, b=req.addition.b, seed=req.seed, decomposition=req.addition.decomposition,
        vary_prompts=req.addition.vary_prompts,
    )


def config_from_proto(req: voting_pb2.SolveRequest) -> SolveConfig:
    v = req.voting
    cfg = SolveConfig(seed=req.seed)
    for field in (
        "k", "target_success", "p", "calibration_steps", "calibration_samples_per_step",
        "max_samples_per_step", "max_output_tokens", "retries", "max_steps", "calibration_confidence",
    ):
        value = _opt(v, field)
        if value is not None:
            setattr(cfg, field, value)
    if v.HasField("k") and v.k == 0:
        raise InvalidArgument("voting.k", "must be >= 1, got 0")
    cfg.validate()
    return cfg


def step_to_proto(s: StepResult) -> voting_pb2.SolveEvent:
    return voting_pb2.SolveEvent(
        step=voting_pb2.StepEvent(
            index=s.index,
            winner=s.winner_text,
            votes=[voting_pb2.Vote(answer=a, votes=n) for a, n in s.votes],
            red_flags=s.red_flags,
            samples=s.samples,
            compute_units=s.compute_units,
            latency_ms=s.latency_ms,
        )
    )


def summary_to_proto(s: Summary, request_id: str = "") -> voting_pb2.SolveEvent:
    msg = voting_pb2.SolveSummary(
        request_id=request_id, task=s.task, sampler=s.sampler, simulated=s.simulated, k=s.k, p=s.p,
        expected_success=s.expected_success, steps_total=s.steps_total, steps_completed=s.steps_completed,
        total_samples=s.total_samples, red_flags=s.red_flags, calibration_samples=s.calibration_samples,
        compute_units=s.compute_units, wall_time_ms=s.wall_time_ms, success=s.success,
        answer=s.answer, progress=s.progress, error=s.error, p_estimate=s.p_estimate,
        p_lower_bound=s.p_lower_bound, calibration_valid=s.calibration_valid,
        calibration_correct=s.calibration_correct, calibration_confidence=s.calibration_confidence,
    )
    if s.correct is not None:
        msg.correct = s.correct
    if s.failed_step is not None:
        msg.failed_step = s.failed_step
    return voting_pb2.SolveEvent(summary=msg)


def summary_to_dict(s: voting_pb2.SolveSummary) -> dict:
    """JSON-ready summary (the CLI's --json output); unset optional fields are None."""
    out = {}
    for f in s.DESCRIPTOR.fields:
        present = not f.has_presence or s.HasField(f.name)
        out[f.name] = getattr(s, f.name) if present else None
    return out
