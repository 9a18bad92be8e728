"""The generated arithmetic task set: graded levels, exact answers, distinct questions, answer parsing."""
from __future__ import annotations

import re

import pytest

from ponder.common.errors import InvalidArgument
from ponder.tasksets import make_taskset, parse_answer, register
from ponder.tasksets.arith import LEVELS, SHOTS


def test_levels_are_balanced_distinct_and_deterministic():
    qs = make_taskset("arith", 280, seed=1)
    assert len(qs) == 280 and len({q.question for q in qs}) == 280 and len({q.id for q in qs}) == 280
    assert [sum(q.level == lv for q in qs) for lv in range(1, LEVELS + 1)] == [40] * 7
    assert make_taskset("arith", 280, seed=1) == qs and make_taskset("arith", 280, seed=2) != qs


def test_arithmetic_answers_are_exact():
    for q in make_taskset("arith", 350, seed=4):
        m = re.fullmatch(r"(\d+) ([-+*]) (\d+) = \?", q.question)
        if q.kind == "next":
            assert q.answer == int(re.findall(r"\d+", q.question)[0]) + 1
        elif m:
            a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
            assert q.answer == {"+": a + b, "-": a - b, "*": a * b}[op]
        else:
            assert q.level in (5, 6) and q.answer >= 0 and q.question.endswith("?")
        p = q.prompt()
        if m:
            assert p.endswith(f"\n{m.group(1)}{m.group(2)}{m.group(3)}=") and p.startswith(SHOTS[m.group(2)])
        elif q.kind == "next":
            assert p.endswith(f", {q.answer - 1},") and p.startswith(SHOTS["next"])
        else:
            assert p == f"{SHOTS['word']}Q: {q.question}\nA:"


def test_word_problems_compute_what_they_say():
    for q in make_taskset("arith", 560, seed=0):
        nums = [int(x) for x in re.findall(r"\d+", q.question)]
        if q.kind == "word_add":
            assert q.answer == nums[0] + nums[1]
        elif q.kind == "word_sub":
            assert q.answer == nums[0] - nums[1] > 0
        elif q.kind == "word_div":
            assert q.answer * nums[1] == nums[0]
        elif q.kind == "word_2step":
            assert q.answer == nums[0] + nums[1] - nums[2] >= 0
        elif q.kind == "word_2step_mul":
            assert q.answer == nums[0] * nums[1] + nums[2]


@pytest.mark.parametrize("text, want", [(" 12", 12), ("12.", 12), (" 7 apples\n", 7), ("-3", -3), ("none", None), ("", None)])
def test_parse_answer_takes_the_first_integer(text, want):
    assert parse_answer(text) == want


def test_bad_requests_name_the_field():
    with pytest.raises(InvalidArgument) as e:
        make_taskset("trivia", 10)
    assert e.value.field == "taskset"
    with pytest.raises(InvalidArgument) as e:
        make_taskset("arith", 10_000)
    assert e.value.field == "questions"
    with pytest.raises(InvalidArgument) as e:
        make_taskset("arith", 0)
    assert e.value.field == "questions"
    with pytest.raises(ValueError):
        register("arith", lambda n, s: [])


def test_interleave_spreads_a_partial_table_over_every_level():
    from ponder.tasksets.samples import interleave, todo

    qs = make_taskset("arith", 70, seed=3)
    order = interleave(qs)
    assert sorted(q.id for q in order) == sorted(q.id for q in qs)
    assert [q.level for q in order[:14]] == list(range(1, 8)) * 2
    work = todo(qs, [{"id": order[0].id, "mode": "plain", "index": 0}], {"plain": 2})
    assert len(work) == 139 and work[0] == (order[0], "plain", 1) and work[1][0] == order[1]
