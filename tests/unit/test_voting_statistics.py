"""With the scripted sampler, measured voted error and cost match the formulas within confidence bounds."""
from __future__ import annotations

import math
import random

from ponder.voting.kchoice import expected_votes_per_step, voted_step_success
from ponder.voting.samplers import ScriptedSampler
from ponder.voting.solver import SolveConfig, StepResult, solve
from ponder.voting.tasks import Addition
from ponder.voting.tasks.hanoi import Hanoi
from ponder.voting.rule import vote_sync


async def test_async_path_voted_error_and_cost_match_theory():
    p, k, steps = 0.7, 2, 2500
    task = Addition(steps, seed=11)
    state, wrong, samples = task.initial_state(), 0, []
    async for ev in solve(task, ScriptedSampler(p, seed=5), SolveConfig(k=k, max_samples_per_step=500, seed=5)):
        if not isinstance(ev, StepResult):
            break
        wrong += ev.winner != task.oracle(state)
        samples.append(ev.samples)
        state = task.apply(state, ev.winner)
    err = 1 - voted_step_success(p, k)  # 0.1552
    se = math.sqrt(err * (1 - err) / steps)
    assert abs(wrong / steps - err) < 4 * se, (wrong / steps, err)
    mean = sum(samples) / steps
    sd = math.sqrt(sum((x - mean) ** 2 for x in samples) / (steps - 1))
    assert abs(mean - expected_votes_per_step(p, k)) < 4 * sd / math.sqrt(steps), (mean, expected_votes_per_step(p, k))
    # without voting the error would be 1 - p = 0.3: voting must clearly beat it
    assert wrong / steps < 0.2


def test_fast_path_higher_k_on_hanoi_states():
    p, k, trials = 0.6, 3, 4000
    task = Hanoi(10)
    sim = ScriptedSampler(p, seed=2)
    rng = random.Random(3)
    states = task.calibration_states(random.Random(4), trials)
    wrong = total = 0
    for i, s in enumerate(states):
        d = vote_sync(lambda n, s=s, i=i: sim.outcomes(task, s, i, n, rng), k, 10_000)
        wrong += d.winner != task.oracle(s)
        total += d.samples
    err = 1 - voted_step_success(p, k)  # 0.229
    se = math.sqrt(err * (1 - err) / trials)
    assert abs(wrong / trials - err) < 4 * se
    assert abs(total / trials - expected_votes_per_step(p, k)) / expected_votes_per_step(p, k) < 0.05
