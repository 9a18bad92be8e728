"""The MAKER loop: decide each step of a task by voting, in order, until it is done.

``solve`` is an async generator yielding one ``StepResult`` per decided step
and exactly one ``Summary`` last. Steps are sequential (each prompt needs the
previous winner), so parallelism is within a step: its samples are drawn
concurrently in the batches ``rule.vote_step`` asks for, and many runs share a
pool at once. A step that cannot be decided (sample cap, retries spent, a
sampler that refuses) ends the run: the summary then has ``success=False``, the
failed step's index, and the progress kept so far. Bad settings raise
``InvalidArgument`` before any sample is drawn.

k: given directly, or the smallest k that meets ``target_success`` for the
task's step count (``kchoice.choose_k``) with p given, or else the one-sided
lower confidence bound on p (``kchoice.p_lower_bound`` at
``calibration_confidence``) from a calibration sample of steps checked against
the task's oracle. Calibration fails (``CalibrationFailed``, reported in the
summary) when that bound is not above 1/2, since voting at such p may converge
on a wrong answer; the summary reports the bound, the point estimate and the
sample counts either way.
"""
from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from typing import AsyncIterator, Awaitable, Callable, Hashable

from ponder.common.errors import InvalidArgument, PoolUnavailable, PonderError
from ponder.voting import kchoice
from ponder.voting.errors import CalibrationFailed, SampleCapReached, StepFailed
from ponder.voting.rule import Decision, RedFlag, vote_step
from ponder.voting.samplers.base import Sample, Sampler
from ponder.voting.tasks.base import StepPrompt, Task


@dataclasses.dataclass(slots=True)
class SolveConfig:
    k: int | None = None  # fixed k; None: derive from p and target_success
    target_success: float = 0.95  # whole-task success wanted when k is derived
    p: float | None = None  # per-step success estimate; None: calibrate
    calibration_steps: int = 32  # random states along a correct run; one fresh state per step keeps samples independent
    calibration_samples_per_step: int = 2
    calibration_confidence: float = 0.95  # one-sided; k is chosen from p's lower bound at this confidence
    max_samples_per_step: int = 100
    max_output_tokens: int | None = None  # red-flag limit; None: the task's
    retries: int = 3  # rounds of re-drawing failed samples per step
    retry_backoff_s: float = 0.2  # doubled each round
    max_steps: int | None = None  # stop after this many steps; None: the task's step count
    seed: int = 0

    def validate(self) -> None:
        if self.k is not None and self.k < 1:
            raise InvalidArgument("voting.k", f"must be >= 1, got {self.k}")
        if self.p is not None and not 0.5 < self.p < 1.0:
            raise InvalidArgument("voting.p", f"must be in (0.5, 1), got {self.p}")
        if not 0.0 < self.target_success < 1.0:
            raise InvalidArgument("voting.target_success", f"must be in (0, 1), got {self.target_success}")
        for name in ("calibration_steps", "calibration_samples_per_step", "max_samples_per_step"):
            if getattr(self, name) < 1:
                raise InvalidArgument(f"voting.{name}", f"must be >= 1, got {getattr(self, name)}")
        if not 0.5 < self.calibration_confidence < 1.0:
            raise InvalidArgument(
                "voting.calibration_confidence", f"must be in (0.5, 1), got {self.calibration_confidence}")
        if self.max_output_tokens is not None and self.max_output_tokens < 1:
            raise InvalidArgument("voting.max_output_tokens", f"must be >= 1, got {self.max_output_tokens}")
        if self.retries < 0:
            raise InvalidArgument("voting.retries", f"must be >= 0, got {self.retries}")
        if self.max_steps is not None and self.max_steps < 1:
            raise InvalidArgument("voting.max_steps", f"must be >= 1, got {self.max_steps}")


@dataclasses.dataclass(slots=True)
class StepResult:
    index: int
    winner: Hashable
    winner_text: str
    votes: list[tuple[str, int]]  # rendered result -> votes, most first
    red_flags: int
    samples: int
    compute_units: float
    latency_ms: float


@dataclasses.dataclass(slots=True)
class Summary:
    task: str
    sampler: str
    simulated: bool
    k: int
    p: float  # p used to derive k (the lower bound when calibrated); 0 when k was given and p unknown
    expected_success: float  # formula's whole-task success at (p, k); 0 when p unknown
    steps_total: int
    steps_completed: int
    total_samples: int
    red_flags: int
    calibration_samples: int
    compute_units: float
    wall_time_ms: float
    success: bool  # every step decided and the task reached its end
    correct: bool | None  # the task's own check of the final state; None when it cannot tell
    answer: str
    progress: str
    failed_step: int | None = None
    error: str = ""
    p_estimate: float = 0.0  # calibration's point estimate correct / valid; 0 without calibration
    p_lower_bound: float = 0.0  # its one-sided lower bound at calibration_confidence; 0 without calibration
    calibration_valid: int = 0  # calibration samples that were not red-flagged
    calibration_correct: int = 0
    calibration_confidence: float = 0.0  # 0 without calibration


class _Run:
    """Per-run counters and the draw function with retries."""

    def __init__(self, task: Task, sampler: Sampler, cfg: SolveConfig, sleep, clock):
        self.task, self.sampler, self.cfg, self.sleep, self.clock = task, sampler, cfg, sleep, clock
        self.samples = self.red_flags = 0
        self.units = 0.0
        self._seq = 0

    def _seed(self) -> int:
        self._seq += 1
        return (self.cfg.seed * 0x9E3779B1 + self._seq * 0x85EBCA77) % (1 << 63)

    def judge(self, sample: Sample, state, limit: int) -> Hashable:
        if sample.finish_reason == "length" or sample.output_tokens > limit:
            return RedFlag("too_long", f"{sample.output_tokens} tokens (limit {limit})")
        try:
            return self.task.parse(sample.text, state)
        except Exception as e:  # noqa: BLE001 - any parser failure is a red flag
            return RedFlag("unparseable", str(e)[:200])

    def _one(self, prompt: StepPrompt) -> Awaitable[Sample]:
        seed = self._seed()
        return self.sampler.sample(self.task.vary(prompt, seed), seed)

    async def draw_samples(self, prompt: StepPrompt, n: int) -> list[Sample]:
        """n samples in parallel; failed ones are re-drawn up to ``retries`` rounds."""
        got: list[Sample] = []
        pending = n
        for attempt in range(self.cfg.retries + 1):
            outs = await asyncio.gather(
                *(self._one(prompt) for _ in range(pending)), return_exceptions=True
            )
            errors = []
            for o in outs:
                if isinstance(o, Sample):
                    got.append(o)
                elif isinstance(o, PoolUnavailable):
                    errors.append(o)
                elif isinstance(o, PonderError):
                    raise StepFailed(prompt.step, "sampler refused", o.message) from o
                else:
                    raise o
            pending = len(errors)
            if not pending:
                return got
            if attempt < self.cfg.retries:
                await self.sleep(self.cfg.retry_backoff_s * (2**attempt))
        raise StepFailed(
            prompt.step, "retries exhausted", f"{pending} of {n} samples failed after {self.cfg.retries} retries: {errors[0].message}"
        )

    def drawer(self, prompt: StepPrompt, state, limit: int) -> Callable[[int], Awaitable[list]]:
        async def draw(n: int) -> list:
            samples = await self.draw_samples(prompt, n)
            self.samples += len(samples)
            self.units += sum(s.compute_units for s in samples)
            outs = [self.judge(s, state, limit) for s in samples]
            self.red_flags += sum(isinstance(o, RedFlag) for o in outs)
            return outs

        return draw

    async def calibrate(self) -> tuple[int, int]:
        """(correct, valid) samples on calibration states, judged against the oracle."""
        rng = random.Random(self.cfg.seed)
        correct = valid = 0
        for i, state in enumerate(self.task.calibration_states(rng, self.cfg.calibration_steps)):
            prompt = self.task.prompt(state, -1 - i)
            limit = self.cfg.max_output_tokens or prompt.max_tokens
            try:
                outs = await self.drawer(prompt, state, limit)(self.cfg.calibration_samples_per_step)
            except StepFailed as e:
                raise StepFailed(-1, "calibration", e.detail) from e
            right = self.task.oracle(state)
            for o in outs:
                if not isinstance(o, RedFlag):
                    valid += 1
                    correct += o == right
        if valid == 0:
            raise CalibrationFailed(0.0, 0, 0, 0.0, self.cfg.calibration_confidence)
        return correct, valid


def _votes(task: Task, d: Decision) -> list[tuple[str, int]]:
    return sorted(((task.render(r), v) for r, v in d.votes.items()), key=lambda x: -x[1])


async def solve(
    task: Task,
    sampler: Sampler,
    cfg: SolveConfig,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[StepResult | Summary]:
    """Run the task; yields StepResult per step, then one Summary (see module docstring)."""
    cfg.validate()
    run = _Run(task, sampler, cfg, sleep, clock)
    t0 = clock()
    steps_total = task.total_steps()
    max_steps = cfg.max_steps or steps_total
    state = task.initial_state()
    index = 0
    k, p, error, failed = cfg.k or 0, cfg.p or 0.0, "", None
    cal_samples = cal_correct = cal_valid = 0
    p_hat = p_lo = 0.0
    try:
        if cfg.k is None and task.done(state):
            k = 1  # nothing to decide
        elif cfg.k is None:
            if cfg.p is None:
                cal_correct, cal_valid = await run.calibrate()
                cal_samples = run.samples
                p_hat = cal_correct / cal_valid
                p_lo = kchoice.p_lower_bound(cal_correct, cal_valid, cfg.calibration_confidence)
                if p_lo <= 0.5:
                    raise CalibrationFailed(p_hat, cal_correct, cal_valid, p_lo, cfg.calibration_confidence)
                p = p_lo
            k = kchoice.choose_k(p, steps_total, cfg.target_success, "voting.p", "voting.target_success")
        while not task.done(state) and index < max_steps:
            ts = clock()
            before = (run.samples, run.units)
            prompt = task.prompt(state, index)
            limit = cfg.max_output_tokens or prompt.max_tokens
            try:
                d = await vote_step(run.drawer(prompt, state, limit), k, cfg.max_samples_per_step)
            except SampleCapReached as e:
                raise StepFailed(index, "sample cap", e.message) from e
            yield StepResult(
                index, d.winner, task.render(d.winner), _votes(task, d), d.red_flags,
                run.samples - before[0], run.units - before[1], (clock() - ts) * 1000,
            )
            state = task.apply(state, d.winner)
            index += 1
        if not task.done(state):
            if cfg.max_steps is None:
                error, failed = f"task not finished after its {steps_total} steps", index
            else:
                error = f"stopped after voting.max_steps={max_steps} steps"
    except StepFailed as e:
        error, failed = e.message, e.step
    except CalibrationFailed as e:
        error, failed = e.message, -1
    done = task.done(state)
    yield Summary(
        task=task.name,
        sampler=sampler.name,
        simulated=sampler.simulated,
        k=k,
        p=p,
        expected_success=kchoice.task_success(p, k, steps_total) if p and k else 0.0,
        steps_total=steps_total,
        steps_completed=index,
        total_samples=run.samples,
        red_flags=run.red_flags,
        calibration_samples=cal_samples,
        compute_units=run.units,
        wall_time_ms=(clock() - t0) * 1000,
        success=done and not error,
        correct=task.verify(state) if done else None,
        answer=task.answer(state),
        progress=task.describe(state),
        failed_step=failed,
        error=error,
        p_estimate=p_hat,
        p_lower_bound=p_lo,
        calibration_valid=cal_valid,
        calibration_correct=cal_correct,
        calibration_confidence=cfg.calibration_confidence if cal_valid else 0.0,
    )
