"""The solve loop: k choice, calibration, red flags, retries and failure summaries."""
from __future__ import annotations

import random

import pytest

from ponder.common.errors import InvalidArgument, PoolUnavailable
from ponder.voting.errors import SamplerRefused
from ponder.voting.samplers import Sample, Sampler, ScriptedSampler
from ponder.voting.solver import SolveConfig, StepResult, Summary, solve
from ponder.voting.tasks import Addition, Hanoi


async def collect(task, sampler, cfg, **kw):
    steps, summary = [], None
    async for ev in solve(task, sampler, cfg, **kw):
        if isinstance(ev, StepResult):
            steps.append(ev)
        else:
            summary = ev
    assert isinstance(summary, Summary)
    return steps, summary


class Oracle(Sampler):
    """Answers each step correctly; a script of per-call behaviours can override."""

    name = "oracle"

    def __init__(self, script=None):
        self.script = list(script or [])
        self.calls = 0

    async def sample(self, prompt, seed):
        self.calls += 1
        what = self.script.pop(0) if self.script else "ok"
        if what == "down":
            raise PoolUnavailable("small", "connection refused")
        if what == "refuse":
            raise SamplerRefused("pool:small", "INVALID_ARGUMENT: max_tokens too large")
        if what == "long":
            return Sample("12", 3, 99, "length", 99.0)
        if what == "junk":
            return Sample("banana", 3, 1, "stop", 1.0)
        if what == "wrong":
            return Sample(prompt.task.render(prompt.task.plausible_error(prompt.state, random.Random(0))), 10, 2, "stop", 3.0)
        text = prompt.task.render(prompt.task.oracle(prompt.state))
        return Sample(text, 10, 2, "stop", 3.0)


async def no_sleep(_s):
    return None


async def test_k_from_p_and_target():
    steps, s = await collect(Hanoi(3), ScriptedSampler(0.9, seed=1), SolveConfig(p=0.9, target_success=0.99))
    assert s.k == 3 and s.p == 0.9 and s.expected_success >= 0.99  # r^3 = 1/729 <= expm1(-ln 0.99 / 7)
    assert s.success and s.correct and len(steps) == 7 and s.steps_completed == 7
    assert s.total_samples == sum(x.samples for x in steps) and s.calibration_samples == 0


async def test_calibration_estimates_p_and_counts_its_samples():
    _, s = await collect(
        Hanoi(5), ScriptedSampler(0.8, seed=3), SolveConfig(calibration_steps=40, calibration_samples_per_step=5)
    )
    assert s.calibration_samples == 200 and s.calibration_valid == 200 and 0.7 < s.p_estimate < 0.9 and s.k >= 3
    assert s.p == s.p_lower_bound < s.p_estimate == s.calibration_correct / 200 and s.calibration_confidence == 0.95
    assert s.total_samples > s.calibration_samples and s.success


async def test_all_correct_calibration_chooses_k_from_the_lower_bound_not_p_1():
    _, s = await collect(Hanoi(3), Oracle(), SolveConfig(target_success=0.95))
    assert s.p_estimate == 1.0 and s.calibration_correct == s.calibration_valid == 64
    assert s.p == s.p_lower_bound == pytest.approx(64 / (64 + 1.6448536269514722**2))
    assert s.k == 2 and s.success  # a point estimate of 1 would have given k = 1


async def test_sim_095_hanoi_3_no_longer_picks_k_1():
    _, s = await collect(Hanoi(3), ScriptedSampler(0.95, seed=0), SolveConfig(target_success=0.95))
    assert s.k >= 2 and s.p_lower_bound < s.p_estimate and s.p == s.p_lower_bound


async def test_a_lower_bound_not_above_half_fails_calibration_and_says_why():
    # 3 of 4 correct: point estimate 0.75, but the one-sided 95 % bound is about 0.36
    _, s = await collect(Hanoi(3), Oracle(["wrong", "ok", "ok", "ok"]), SolveConfig(calibration_steps=2))
    assert s.p_estimate == 0.75 and s.p_lower_bound == pytest.approx(0.356, abs=2e-3)
    assert not s.success and s.failed_step == -1 and s.steps_completed == 0
    assert "lower bound" in s.error and "voting.calibration_steps" in s.error


async def test_red_flags_are_reported_per_step_and_in_total():
    sampler = Oracle(["long", "junk", "ok", "ok"])
    steps, s = await collect(Addition(2, "12", "34"), sampler, SolveConfig(k=2))
    assert steps[0].red_flags == 2 and steps[0].samples == 4 and steps[0].votes == [("6", 2)]
    assert s.red_flags == 2 and s.total_samples == 6 and s.answer == "46" and s.correct


async def test_pool_down_then_back_is_retried():
    sampler = Oracle(["ok", "down", "down", "ok", "ok"])
    slept = []

    async def sleep(t):
        slept.append(t)

    _, s = await collect(Addition(2, "12", "34"), sampler, SolveConfig(k=1, retries=3, retry_backoff_s=0.1), sleep=sleep)
    assert s.success and s.answer == "46"
    assert slept == [0.1, 0.2]


async def test_pool_down_past_the_retry_budget_fails_with_step_and_progress():
    sampler = Oracle(["ok", "ok", "down", "down", "down"])
    steps, s = await collect(Addition(3, "123", "456"), sampler, SolveConfig(k=1, retries=2), sleep=no_sleep)
    assert len(steps) == 2 and not s.success
    assert s.failed_step == 2 and s.steps_completed == 2
    assert "retries exhausted" in s.error and "unavailable" in s.error
    assert "2/3 columns done, low digits 79" in s.progress
    assert s.correct is None


async def test_refusing_sampler_fails_at_once():
    sampler = Oracle(["refuse"])
    _, s = await collect(Addition(2, "12", "34"), sampler, SolveConfig(k=1), sleep=no_sleep)
    assert s.failed_step == 0 and "sampler refused" in s.error and sampler.calls == 1


async def test_sample_cap_fails_the_task_clearly():
    _, s = await collect(Addition(3, "123", "456"), Oracle(["junk"] * 50), SolveConfig(k=1, max_samples_per_step=5))
    assert not s.success and s.failed_step == 0 and "sample cap" in s.error and s.red_flags == 5


async def test_calibration_below_half_fails_without_solving():
    _, s = await collect(Hanoi(4), ScriptedSampler(0.2, seed=0), SolveConfig(calibration_steps=20))
    assert not s.success and s.failed_step == -1 and "not above 0.5" in s.error and s.steps_completed == 0


async def test_max_steps_stops_early():
    steps, s = await collect(Hanoi(10), ScriptedSampler(0.99, seed=0), SolveConfig(k=2, max_steps=5))
    assert len(steps) == 5 and not s.success and "max_steps=5" in s.error and s.failed_step is None


@pytest.mark.parametrize(
    "cfg, field",
    [
        (SolveConfig(k=0), "voting.k"),
        (SolveConfig(p=0.5), "voting.p"),
        (SolveConfig(p=1.0), "voting.p"),
        (SolveConfig(target_success=1.5), "voting.target_success"),
        (SolveConfig(max_samples_per_step=0), "voting.max_samples_per_step"),
        (SolveConfig(calibration_confidence=1.0), "voting.calibration_confidence"),
    ],
)
async def test_bad_settings_raise_before_sampling(cfg, field):
    sampler = Oracle()
    with pytest.raises(InvalidArgument) as e:
        await collect(Hanoi(3), sampler, cfg)
    assert e.value.field == field and sampler.calls == 0
