"""Long addition by counting on: the state machine, prompt variation, red flags, and voting through it."""
from __future__ import annotations

import random
import re

import pytest

from ponder.common.errors import InvalidArgument
from ponder.voting.samplers import SamplerRegistry, ScriptedSampler
from ponder.voting.samplers.mix import MixedSampler
from ponder.voting.solver import SolveConfig, StepResult, solve
from ponder.voting.tasks import CountingAddition, make_task
from ponder.voting.tasks.counting import MAX_COUNT


def oracle_run(task):
    s, steps = task.initial_state(), 0
    while not task.done(s):
        s = task.apply(s, task.oracle(s))
        steps += 1
    return s, steps


@pytest.mark.parametrize("a, b", [("999", "1"), ("1", "999"), ("0", "0"), ("5", "5"), ("123456789", "987654321")])
def test_oracle_run_adds_exactly(a, b):
    task = CountingAddition(max(len(a), len(b)), a, b)
    s, steps = oracle_run(task)
    assert task.verify(s) and int(task.answer(s)) == int(a) + int(b)
    assert steps == task.total_steps() == len(task.correct_path())


def test_random_sums_and_the_step_count_formula():
    rng = random.Random(3)
    for _ in range(50):
        n = rng.randrange(1, 40)
        task = CountingAddition(n, seed=rng.randrange(10**6))
        s, steps = oracle_run(task)
        assert task.answer(s) == task.expected()
        carry, want = 0, 0
        for x, y in zip(task.a, task.b):
            want += min(x, y) + carry  # count on from the larger digit by the smaller plus the carry
            carry = (x + y + carry) // 10
        assert steps == want


def test_each_step_is_a_successor_and_columns_close_into_digit_and_carry():
    task = CountingAddition(2, "58", "67")  # 8+7 = 15 (count 8->15), 5+6+1 = 12 (count 6->12)
    path = task.correct_path()
    assert [st.cur for st in path] == [8, 9, 10, 11, 12, 13, 14, 6, 7, 8, 9, 10, 11]
    assert all(task.oracle(st) == st.cur + 1 for st in path)
    s, _ = oracle_run(task)
    assert task.answer(s) == "125"


def test_prompt_is_the_count_so_far_and_vary_changes_only_the_examples():
    task = CountingAddition(2, "58", "67", vary_prompts=True)
    st = task.correct_path()[3]  # 8 + 7: counted 8, 9, 10, 11 so far
    base = task.prompt(st, 3)
    assert base.text.endswith("\n8, 9, 10, 11,") and base.stop == ("\n", ",")
    texts = {task.vary(base, seed).text for seed in range(40)}
    assert len(texts) > 20
    for t in texts:
        *examples, last = t.splitlines()
        assert last == "8, 9, 10, 11," and len(examples) == 2
        assert all(str(st.cur) not in ex.split(", ") for ex in examples)  # the step's own number never shows
    assert task.vary(base, 7).text == task.vary(base, 7).text  # deterministic in the seed
    fixed = CountingAddition(2, "58", "67", vary_prompts=False)
    assert fixed.vary(base, 7) is base


@pytest.mark.parametrize("text, ok", [("9", 9), (" 12\n", 12), ("7.", 7), ("banana", None), ("25", None), ("123", None)])
def test_parse_red_flags_non_numbers_and_impossible_counts(text, ok):
    task = CountingAddition(1, "8", "1")
    st = task.initial_state()
    if ok is None:
        with pytest.raises(ValueError):
            task.parse(text, st)
    else:
        assert task.parse(text, st) == ok <= MAX_COUNT


async def test_voting_with_a_scripted_sampler_finishes_the_sum():
    task = make_task("addition", digits=12, seed=5, decomposition="count")
    assert isinstance(task, CountingAddition)
    summary = None
    async for ev in solve(task, ScriptedSampler(0.8, seed=2), SolveConfig(target_success=0.95, seed=2)):
        if not isinstance(ev, StepResult):
            summary = ev
    assert summary.success and summary.correct and summary.steps_completed == task.total_steps()
    assert summary.k >= 3 and summary.p_lower_bound < summary.p_estimate


def test_unknown_decomposition_names_the_field():
    with pytest.raises(InvalidArgument) as e:
        make_task("addition", digits=3, decomposition="words")
    assert e.value.field == "addition.decomposition"


async def test_mixed_sampler_spreads_samples_over_members():
    reg = SamplerRegistry()
    mix = reg.get("mix:sim:1.0,sim:0.0", seed=1)
    assert isinstance(mix, MixedSampler) and mix.simulated and mix.name.startswith("mix:sim:1 ")
    task = CountingAddition(2, "58", "67")
    prompt = task.prompt(task.initial_state(), 0)
    right = [(await mix.sample(prompt, seed)).text == "9" for seed in range(100)]
    assert right == [seed % 2 == 0 for seed in range(100)]
    with pytest.raises(InvalidArgument):
        reg.get("mix:sim:0.9")


def test_column_prompts_vary_only_when_asked():
    from ponder.voting.tasks import Addition

    fixed, varied = Addition(3, "123", "456"), Addition(3, "123", "456", vary_prompts=True)
    p = fixed.prompt(fixed.initial_state(), 0)
    assert fixed.vary(p, 3) is p  # one prompt for every sample: an engine can reuse its cache
    texts = {varied.vary(p, seed).text for seed in range(20)}
    assert len(texts) > 10 and all(t.endswith("\n3+6=") and t.count("\n") == 10 for t in texts)


def test_two_digit_counts_fit_the_token_limit_with_room_for_the_stop():
    # " 10," is four tokens for a digit-by-digit tokenizer; the answer must end by the stop, not the limit
    task = CountingAddition(1, "9", "1")
    assert task.prompt(task.initial_state(), 0).max_tokens >= 4
