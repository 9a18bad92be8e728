"""Question / rationale / answer examples: a generated arithmetic set and JSONL files (GSM8K).

The generated set has graded difficulty: level 1 is one addition or
subtraction of single-digit numbers (a subtraction takes one back from their sum),
level 2 the same with numbers up to 30,
level 3 two steps, level 4 three steps with a multiplication. A seed fixes
every draw, and train and test come from disjoint seed streams. On CPU the
plain Gemma 3 270M backbone with the two-shot prompt below answers levels 1
and 2 together 57 % of the time (3 seeds x 20, greedy), and two-step problems
(level 3) 0 of 6 in a probe: ``LEVELS`` (1 and 2) is the range where soft
thoughts can move its accuracy either way.
GSM8K's ``answer`` field holds the rationale then ``#### <answer>``; its
``<<...>>`` calculator notes are dropped.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import re
from typing import Iterable

from ponder.common.errors import InvalidArgument

NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jin", "Kai", "Lea")
THINGS = ("apples", "books", "coins", "stamps", "marbles", "pencils", "shells", "cards")


@dataclasses.dataclass(frozen=True)
class Example:
    question: str
    rationale: str
    answer: str
    level: int = 0


LEVELS = (1, 2)
STEPS = {1: 1, 2: 1, 3: 2, 4: 3}  # arithmetic steps in a level's rationale

# Two worked examples (one addition, one subtraction) in the answer format the scorer
# reads ("The answer is N."): without them the 270M backbone rarely writes a number.
# Fixed text, not drawn from the generated set, so no test question is an exemplar.
EXEMPLARS = (
    "Question: Mia has 7 pens and gets 5 more. How many pens does Mia have now?\n"
    "Answer: 7 + 5 = 12. The answer is 12.\n\n"
    "Question: Tom has 9 cups and gives away 4. How many cups are left?\n"
    "Answer: 9 - 4 = 5. The answer is 5.\n\n"
)
STOP = ("\nQuestion:", "\n\n")  # the backbone starts another exemplar after its answer


def prompt_of(question: str) -> str:
    """The prompt every evaluation sends, with or without soft thoughts: two worked
    examples, then the question; the model continues after "Answer:"."""
    return f"{EXEMPLARS}Question: {question}\nAnswer:"


def target_of(ex: Example) -> str:
    """What the projection is trained to make the backbone write after the prompt."""
    return f" {ex.rationale} The answer is {ex.answer}."


def _problem(rng: random.Random, level: int) -> Example:
    who, what = rng.choice(NAMES), rng.choice(THINGS)
    a, b = (rng.randint(2, 9), rng.randint(2, 9)) if level == 1 else (rng.randint(2, 30), rng.randint(2, 20))
    if level in (1, 2):
        if rng.random() < 0.5:
            return Example(f"{who} has {a} {what} and gets {b} more. How many {what} does {who} have now?",
                           f"{a} + {b} = {a + b}.", str(a + b), level)
        a += b
        return Example(f"{who} has {a} {what} and gives away {b}. How many {what} are left?",
                       f"{a} - {b} = {a - b}.", str(a - b), level)
    c = rng.randint(2, 9)
    if level == 3:
        s = a + b
        return Example(
            f"{who} has {a} {what}, buys {b} more, then gives {c} to a friend. How many {what} does {who} have?",
            f"{a} + {b} = {s}. {s} - {c} = {s - c}.", str(s - c), 3)
    k = rng.randint(2, 5)
    s = a + b
    t = s * k
    return Example(
        f"{who} has {a} {what} and buys {b} more. Then {who}'s collection grows {k} times bigger, "
        f"and {who} gives away {c}. How many {what} does {who} have?",
        f"{a} + {b} = {s}. {s} * {k} = {t}. {t} - {c} = {t - c}.", str(t - c), 4)


def generated(n: int, seed: int, split: str = "train", levels: Iterable[int] = LEVELS) -> list[Example]:
    """``n`` problems, levels in turn; train and test use disjoint seed streams.
    InvalidArgument naming ``split`` or ``levels`` for a bad value."""
    if split not in ("train", "test"):
        raise InvalidArgument("split", f"must be train or test, got {split!r}")
    lv = list(levels)
    if not lv or any(x not in STEPS for x in lv):
        raise InvalidArgument("levels", f"levels are {sorted(STEPS)}, got {lv}")
    rng = random.Random(f"{split}:{seed}")
    return [_problem(rng, lv[i % len(lv)]) for i in range(n)]


def gsm8k_example(row: dict) -> Example:
    rationale, _, answer = row["answer"].partition("####")
    rationale = re.sub(r"<<[^>]*>>", "", rationale).strip().replace("\n", " ")
    return Example(row["question"].strip(), rationale, answer.strip().replace(",", ""))


def read_jsonl(path: str, limit: int | None = None) -> list[Example]:
    """Examples from JSONL rows with question/answer (GSM8K style) or question/rationale/answer.
    Raises InvalidArgument naming the file and line of a bad row."""
    if not os.path.isfile(path):
        raise InvalidArgument("data", f"{path!r} does not exist")
    out: list[Example] = []
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                ex = (Example(row["question"], row["rationale"], str(row["answer"]))
                      if "rationale" in row else gsm8k_example(row))
            except (ValueError, KeyError, TypeError) as e:
                raise InvalidArgument("data", f"{path}:{i}: not a question/answer row ({e})") from None
            out.append(ex)
            if limit is not None and len(out) >= limit:
                break
    return out


def data_hash(examples: list[Example]) -> str:
    h = hashlib.sha256()
    for ex in examples:
        h.update(json.dumps(dataclasses.astuple(ex)).encode())
    return h.hexdigest()


_NUM = r"-?\d[\d,]*(?:\.\d+)?"


def extract_answer(text: str) -> str | None:
    """The number after the last "answer is", else the last number in the text; None if there is none."""
    m = re.findall(r"answer is\s*:?\s*\$?(" + _NUM + ")", text, flags=re.I)
    nums = m or re.findall(_NUM, text)
    if not nums:
        return None
    return nums[-1].replace(",", "").rstrip(".")


def is_correct(text: str, answer: str) -> bool:
    got = extract_answer(text)
    if got is None:
        return False
    try:
        return abs(float(got) - float(answer)) < 1e-6
    except ValueError:
        return got == answer
