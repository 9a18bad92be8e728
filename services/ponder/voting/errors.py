"""Voting errors: each carries structured fields and builds its own message.

``StepFailed`` ends a run: the solver reports it in the final summary (with
the step index and the progress kept) rather than as an RPC error. The
others are request problems mapped to status codes by ``ponder.common.errors``.
"""
from __future__ import annotations

from ponder.common.errors import Aborted, FailedPrecondition, ResourceExhausted


class StepFailed(Aborted):
    """A step could not be decided: sample cap hit, retries spent, or the sampler refused."""

    def __init__(self, step: int, reason: str, detail: str):
        self.step, self.reason, self.detail = step, reason, detail
        super().__init__(f"step {step} failed ({reason}): {detail}")


class SampleCapReached(ResourceExhausted):
    """No answer led by k before ``max_samples`` samples were drawn for one step."""

    def __init__(self, max_samples: int, k: int, votes: dict, red_flags: int):
        self.max_samples, self.k, self.votes, self.red_flags = max_samples, k, votes, red_flags
        top = sorted(votes.values(), reverse=True)[:2]
        super().__init__(
            f"no answer led by k={k} within {max_samples} samples "
            f"(top votes {top}, {len(votes)} distinct answers, {red_flags} red-flagged)"
        )


class SamplerRefused(FailedPrecondition):
    """The sampler failed in a way retrying will not fix (bad request, missing model)."""

    def __init__(self, sampler: str, detail: str):
        self.sampler, self.detail = sampler, detail
        super().__init__(f"sampler {sampler} refused: {detail}")


class CalibrationFailed(FailedPrecondition):
    """The calibration sample cannot put p above 1/2, where voting may converge on a wrong answer."""

    def __init__(self, p_hat: float, correct: int, valid: int, p_lower: float = 0.0, confidence: float = 0.95):
        self.p_hat, self.correct, self.valid, self.p_lower, self.confidence = p_hat, correct, valid, p_lower, confidence
        if valid == 0:
            msg = "no valid calibration samples (all red-flagged); set voting.k explicitly or use a stronger pool"
        else:
            msg = (
                f"per-step success p={p_hat:.3f} ({correct}/{valid} valid calibration samples) has a "
                f"{confidence:.0%} lower bound of {p_lower:.3f}, not above 0.5; raise voting.calibration_steps, "
                "set voting.k explicitly or use a stronger pool"
            )
        super().__init__(msg)
