"""Hanoi and long addition as state machines: oracle runs, parsing, red flags, calibration states."""
from __future__ import annotations

import random

import pytest

from ponder.common.errors import InvalidArgument
from ponder.voting.tasks import Addition, Hanoi, make_task
from ponder.voting.tasks.addition import AdditionState, ColumnSum
from ponder.voting.tasks.hanoi import HanoiState, state_after


def run_oracle(task, limit=10**6):
    state, steps = task.initial_state(), 0
    while not task.done(state) and steps < limit:
        state = task.apply(state, task.oracle(state))
        steps += 1
    return state, steps


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_hanoi_oracle_solves_in_2n_minus_1_legal_moves(n):
    task = Hanoi(n)
    state, steps = task.initial_state(), 0
    while not task.done(state):
        step = task.oracle(state)
        assert step.move in task.legal_moves(state.pegs)
        state = task.apply(state, step)
        steps += 1
        assert state_after(n, steps) == state.pegs
    assert steps == task.total_steps() == 2**n - 1
    assert state.pegs == ((), (), tuple(range(n, 0, -1))) and task.verify(state)


def test_hanoi_first_move_direction_depends_on_parity():
    assert Hanoi(2).oracle(Hanoi(2).initial_state()).move == (1, 0, 1)
    assert Hanoi(3).oracle(Hanoi(3).initial_state()).move == (1, 0, 2)


def test_hanoi_prompt_holds_only_pegs_and_previous_move():
    task = Hanoi(3)
    s = HanoiState(((3,), (2, 1), ()), (1, 2, 1))
    text = task.prompt(s, 2).text
    assert "Previous move: [1, 2, 1]" in text and "Current state: [[3], [2, 1], []]" in text
    assert "move = [disk, from_peg, to_peg]" in text


def test_hanoi_parse_roundtrip_and_normalisation():
    task = Hanoi(3)
    s = task.initial_state()
    step = task.oracle(s)
    assert task.parse(task.render(step), s) == step
    messy = "Sure.\nmove = [1,0,2]\nnext_state=[[3,2],[ ],[1]]"
    assert task.parse(messy, s) == step


@pytest.mark.parametrize(
    "text",
    [
        "I think disk 1 goes to peg 2",
        "move = [1, 0]\nnext_state = [[3, 2], [], [1]]",
        "move = [4, 0, 2]\nnext_state = [[3, 2], [], [1]]",
        "move = [1, 0, 0]\nnext_state = [[3, 2], [], [1]]",
        "move = [1, 0, 2]\nnext_state = [[3, 2], [], [1, 1]]",
        "move = [1, 0, 2]\nnext_state = [[3, 2], [1]]",
        "move = [1, 0, 2]\nmove = [1, 0, 1]\nnext_state = [[3, 2], [], [1]]",
    ],
)
def test_hanoi_malformed_answers_raise(text):
    with pytest.raises(ValueError):
        Hanoi(3).parse(text, Hanoi(3).initial_state())


def test_hanoi_plausible_error_is_legal_and_wrong():
    task = Hanoi(4)
    rng = random.Random(0)
    for s in task.calibration_states(rng, 30):
        wrong = task.plausible_error(s, rng)
        assert wrong != task.oracle(s) and wrong.move in task.legal_moves(s.pegs)


def test_hanoi_calibration_states_lie_on_the_optimal_path():
    task = Hanoi(6)
    for s in task.calibration_states(random.Random(1), 20):
        nxt = task.apply(s, task.oracle(s))
        t = next(i for i in range(64) if state_after(6, i) == s.pegs)
        assert state_after(6, t + 1) == nxt.pegs


def test_hanoi_disks_validated():
    with pytest.raises(InvalidArgument) as e:
        Hanoi(0)
    assert e.value.field == "hanoi.disks"


def test_addition_oracle_adds():
    task = Addition(12, "987654321099", "123456789901")
    state, steps = run_oracle(task)
    assert steps == 12 and task.answer(state) == str(987654321099 + 123456789901) and task.verify(state)


def test_addition_random_numbers_from_seed_have_n_digits():
    t1, t2 = Addition(30, seed=3), Addition(30, seed=3)
    assert t1.a_text == t2.a_text and len(t1.a_text) == 30 and t1.a_text[0] != "0"
    state, _ = run_oracle(t1)
    assert int(t1.answer(state)) == int(t1.a_text) + int(t1.b_text)


def test_addition_prompt_is_the_column_only():
    task = Addition(3, "519", "283")
    s = AdditionState(task.a, task.b, 1, 1, (2,))
    text = task.prompt(s, 1).text
    assert text.endswith("\n1+8+1=")
    s0 = task.initial_state()
    assert task.prompt(s0, 0).text.endswith("\n9+3=")


def test_addition_parse_compares_the_column_result():
    task = Addition(2, "99", "99")
    s = AdditionState(task.a, task.b, 0, 1)
    assert task.parse(" 13", s) == task.parse("013\n", s) == ColumnSum(3, 1)
    for bad in ("thirteen", "20", "1 3", ""):
        with pytest.raises(ValueError):
            task.parse(bad, s)
    assert task.parse(task.render(ColumnSum(9, 1)), s) == ColumnSum(9, 1)


def test_addition_wrong_carry_changes_the_answer():
    task = Addition(2, "15", "15")
    s = task.apply(task.initial_state(), ColumnSum(0, 0))  # carry dropped
    s = task.apply(s, task.oracle(s))
    assert task.answer(s) == "20" and task.verify(s) is False


def test_addition_input_validation():
    with pytest.raises(InvalidArgument) as e:
        Addition(3, "12a", "1")
    assert e.value.field == "addition.a"
    with pytest.raises(InvalidArgument) as e:
        Addition(2, "123", "1")
    assert e.value.field == "addition.a"
    with pytest.raises(InvalidArgument) as e:
        make_task("sudoku")
    assert e.value.field == "task"
