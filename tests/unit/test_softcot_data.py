"""SoftCoT data and statistics: generated problems, GSM8K rows, answer extraction, intervals."""
from __future__ import annotations

import json

import pytest

from ponder.common.errors import InvalidArgument
from ponder.softcot import data
from ponder.softcot.evaluate import paired_diff, wilson


def test_generated_problems_are_seeded_graded_and_self_consistent():
    a, b = data.generated(30, seed=1), data.generated(30, seed=1)
    assert a == b and a != data.generated(30, seed=2)
    assert data.generated(30, seed=1, split="test") != a
    assert [e.level for e in a[:4]] == [1, 2, 1, 2]  # the default levels, in turn
    every = data.generated(40, seed=1, levels=(1, 2, 3, 4))
    assert [e.level for e in every[:5]] == [1, 2, 3, 4, 1]
    for e in a + every:
        # The rationale's last result is the answer, and it is arithmetic that holds.
        steps = [s for s in e.rationale.split(". ") if "=" in s]
        for s in steps:
            lhs, rhs = s.rstrip(".").split(" = ")
            assert eval(lhs) == int(rhs)  # noqa: S307 - generated digits and + - * only
        assert steps[-1].rstrip(".").endswith(e.answer)
        assert len(steps) == data.STEPS[e.level]
        if e.level == 1:  # single-digit operands
            assert all(int(x) < 10 for x in steps[0].split(" = ")[0].split()[::2] if "+" in steps[0])


def test_bad_split_or_levels_name_the_field():
    with pytest.raises(InvalidArgument) as ei:
        data.generated(1, 0, split="dev")
    assert ei.value.field == "split"
    for levels in ((), (0,), (1, 5)):
        with pytest.raises(InvalidArgument) as ei:
            data.generated(1, 0, levels=levels)
        assert ei.value.field == "levels"


def test_the_prompt_shows_the_answer_format_the_scorer_reads():
    ex = data.generated(1, seed=0)[0]
    prompt = data.prompt_of(ex.question)
    assert prompt.startswith(data.EXEMPLARS) and prompt.endswith(f"Question: {ex.question}\nAnswer:")
    # Each worked example's answer is what the scorer extracts from its answer line.
    for block in data.EXEMPLARS.strip().split("\n\n"):
        question, answer_line = block.split("\n")
        want = answer_line.rsplit(" ", 1)[-1].rstrip(".")
        assert data.is_correct(answer_line, want) and data.extract_answer(answer_line) == want
    # The training target continues the prompt in the same format; a continuation stops at STOP.
    assert data.is_correct(data.target_of(ex), ex.answer) and data.target_of(ex).startswith(" ")
    assert not any(s in data.target_of(ex) for s in data.STOP)


def test_gsm8k_rows_and_bad_rows(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text(json.dumps({"question": "Q?", "answer": "2*3 = <<2*3=6>>6 each.\nSo 1,200 total.\n#### 1,200"}) + "\n\n"
                 + json.dumps({"question": "R?", "rationale": "r", "answer": 5}) + "\n")
    rows = data.read_jsonl(str(p))
    assert rows[0] == data.Example("Q?", "2*3 = 6 each. So 1,200 total.", "1200")
    assert rows[1].answer == "5" and data.read_jsonl(str(p), limit=1) == rows[:1]
    p.write_text('{"question": "Q?"}\n')
    with pytest.raises(InvalidArgument, match="g.jsonl:1"):
        data.read_jsonl(str(p))
    with pytest.raises(InvalidArgument, match="does not exist"):
        data.read_jsonl(str(tmp_path / "none.jsonl"))


@pytest.mark.parametrize("text,want", [
    ("3 + 4 = 7. The answer is 7.", "7"),
    ("The answer is: $1,250.", "1250"),
    ("first 12, then 15", "15"),
    ("no numbers", None),
    ("The answer is -3.5 apples", "-3.5"),
])
def test_extract_answer(text, want):
    assert data.extract_answer(text) == want


def test_is_correct_compares_numbers():
    assert data.is_correct("so the answer is 7.0", "7") and not data.is_correct("answer is 8", "7")
    assert not data.is_correct("nothing", "7")


def test_wilson_interval_and_paired_difference():
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
    d = paired_diff([True, True, False, True], [False, True, False, False])
    assert d["mean"] == 0.5 and d["ci95"][0] < 0.5 < d["ci95"][1]


@pytest.mark.parametrize("argv,field", [
    (["train", "--out", "p.safetensors", "--steps", "0"], "steps"),
    (["train", "--out", "p.safetensors", "--lr", "-1"], "lr"),
    (["eval", "--projection", "p.safetensors", "--seeds", ","], "seeds"),
])
def test_softcot_cli_refuses_bad_settings_before_loading_models(argv, field):
    from ponder.softcot.cli import main

    with pytest.raises(InvalidArgument) as ei:
        main(argv)
    assert ei.value.field == field
