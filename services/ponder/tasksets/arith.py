"""``arith``: generated arithmetic and word problems with known integer answers, in graded levels.

Levels rise in the number of digits and operations a question needs:

1. one-digit sums under 10, the next number (``3 + 4``, ``What number comes after 41?``)
2. one-digit sums with a carry, differences of one-digit results
3. two-digit plus one-digit, one-digit products
4. two-digit plus two-digit
5. one-step word problems (buy, give away, share out)
6. two-step word problems
7. three-digit sums, two-digit times one-digit

``generate(n, seed)`` spreads n questions evenly over the levels (any
remainder goes to the lowest levels), deterministic in the seed, with no
duplicate question texts. Each question's prompt shows a few worked examples
of its own kind only (tiny models copy the last example's answer when kinds
are mixed), then the question in the same form; see ``Question.prompt``.
``parse_answer`` takes the first integer of the reply (None when there is
none), so "12.", " 12 apples" and "12\\n" all read 12.
"""
from __future__ import annotations

import dataclasses
import random
import re
from typing import Callable

from ponder.common.errors import InvalidArgument

LEVELS = 7
MAX_PER_LEVEL = 80  # level 2 has about 110 distinct questions; stay well inside every level's supply
NAMES = ("Sam", "Ana", "Lee", "Mia", "Tom", "Ivy", "Raj", "Zoe", "Ben", "Kai")
ITEMS = ("apples", "pencils", "stickers", "marbles", "books", "cards", "coins", "shells")

# Few-shot examples per kind of question, shown before it. Tiny models copy the
# last example's answer when kinds are mixed, so each kind sees only its own.
SHOTS = {
    "+": "2+5=7\n13+4=17\n31+45=76\n8+6=14\n",
    "-": "9-4=5\n15-7=8\n7-2=5\n12-9=3\n",
    "*": "3*4=12\n7*5=35\n2*8=16\n12*3=36\n",
    "next": "3, 4, 5, 6\n12, 13, 14, 15\n",
    "word": ("Q: Ada has 9 cups. Ada breaks 4 cups. How many cups does Ada have now?\nA: 5\n"
             "Q: Bo has 3 hats. Bo gets 5 more hats. How many hats does Bo have now?\nA: 8\n"),
}
FEW_SHOT = tuple(SHOTS.values())
_INT_RE = re.compile(r"-?\d+")
_EQ_RE = re.compile(r"(\d+) ([-+*]) (\d+) = \?")


@dataclasses.dataclass(frozen=True, slots=True)
class Question:
    """One question: ``id`` is stable for a (seed, n) pair; ``answer`` the exact integer."""

    id: str
    level: int
    kind: str
    question: str
    answer: int

    def prompt(self) -> str:
        """The kind's few-shot examples, then the question in the same form (``a+b=``, ``n-2, n-1, n,``, ``Q: .. A:``)."""
        m = _EQ_RE.fullmatch(self.question)
        if m:
            a, op, b = m.groups()
            return f"{SHOTS[op]}{a}{op}{b}="
        if self.kind == "next":
            n = int(_INT_RE.findall(self.question)[0])
            return SHOTS["next"] + ", ".join(str(x) for x in range(max(0, n - 2), n + 1)) + ","
        return f"{SHOTS['word']}Q: {self.question}\nA:"


def parse_answer(text: str) -> int | None:
    """First integer in ``text``; None when it has none."""
    m = _INT_RE.search(text)
    return int(m.group()) if m else None


def _l1(r: random.Random) -> tuple[str, str, int]:
    if r.random() < 0.5:
        n = r.randrange(1, 99)
        return "next", f"What number comes after {n}?", n + 1
    a = r.randrange(0, 10)
    b = r.randrange(0, 10 - a)
    return "add", f"{a} + {b} = ?", a + b


def _l2(r: random.Random) -> tuple[str, str, int]:
    kind = r.randrange(3)
    if kind == 0:
        a = r.randrange(2, 10)
        b = r.randrange(11 - a, 10)
        return "add_carry", f"{a} + {b} = ?", a + b
    if kind == 1:
        a = r.randrange(3, 10)
        b = r.randrange(1, a)
        return "sub", f"{a} - {b} = ?", a - b
    a = r.randrange(10, 19)
    b = r.randrange(a - 9, 10)
    return "sub_teen", f"{a} - {b} = ?", a - b


def _l3(r: random.Random) -> tuple[str, str, int]:
    if r.random() < 0.5:
        a, b = r.randrange(10, 90), r.randrange(1, 10)
        return "add_2_1", f"{a} + {b} = ?", a + b
    a, b = r.randrange(2, 10), r.randrange(2, 10)
    return "mul", f"{a} * {b} = ?", a * b


def _l4(r: random.Random) -> tuple[str, str, int]:
    a, b = r.randrange(10, 90), r.randrange(10, 90)
    return "add_2_2", f"{a} + {b} = ?", a + b


def _l5(r: random.Random) -> tuple[str, str, int]:
    name, item = r.choice(NAMES), r.choice(ITEMS)
    a = r.randrange(3, 20)
    kind = r.randrange(3)
    if kind == 0:
        b = r.randrange(2, 12)
        return "word_add", f"{name} has {a} {item}. {name} gets {b} more {item}. How many {item} does {name} have now?", a + b
    if kind == 1:
        b = r.randrange(1, a)
        return "word_sub", f"{name} has {a} {item}. {name} gives away {b} {item}. How many {item} does {name} have now?", a - b
    k, each = r.randrange(2, 6), r.randrange(2, 6)
    return "word_div", f"{name} shares {k * each} {item} equally among {k} friends. How many {item} does each friend get?", each


def _l6(r: random.Random) -> tuple[str, str, int]:
    name, item = r.choice(NAMES), r.choice(ITEMS)
    a, b = r.randrange(5, 20), r.randrange(2, 10)
    c = r.randrange(1, a + b)
    if r.random() < 0.5:
        return ("word_2step", f"{name} has {a} {item}. {name} buys {b} more and then gives away {c}. "
                f"How many {item} does {name} have now?", a + b - c)
    k, each = r.randrange(2, 6), r.randrange(2, 8)
    return ("word_2step_mul", f"{name} buys {k} bags with {each} {item} in each bag and already had {b} {item}. "
            f"How many {item} does {name} have now?", k * each + b)


def _l7(r: random.Random) -> tuple[str, str, int]:
    if r.random() < 0.5:
        a, b = r.randrange(100, 900), r.randrange(100, 900)
        return "add_3_3", f"{a} + {b} = ?", a + b
    a, b = r.randrange(12, 99), r.randrange(3, 10)
    return "mul_2_1", f"{a} * {b} = ?", a * b


GENERATORS: tuple[Callable[[random.Random], tuple[str, str, int]], ...] = (_l1, _l2, _l3, _l4, _l5, _l6, _l7)
_SHOWN = {"5 + 2 = ?", "14 - 6 = ?", "31 + 45 = ?", "6 * 7 = ?"}


def generate(n: int, seed: int = 0) -> list[Question]:
    """n distinct questions over the levels (see module docstring); InvalidArgument for n < 1 or too many."""
    if n < 1:
        raise InvalidArgument("questions", f"must be >= 1, got {n}")
    if n > MAX_PER_LEVEL * LEVELS:
        raise InvalidArgument("questions", f"at most {MAX_PER_LEVEL * LEVELS} distinct questions, got {n}")
    r = random.Random(seed)
    out: list[Question] = []
    seen = set(_SHOWN)
    for level in range(1, LEVELS + 1):
        want = n // LEVELS + (1 if level <= n % LEVELS else 0)
        got = tries = 0
        while got < want:
            tries += 1
            if tries > 100 * want + 1000:
                raise InvalidArgument("questions", f"level {level} cannot supply {want} distinct questions")
            kind, text, answer = GENERATORS[level - 1](r)
            if text in seen:
                continue
            seen.add(text)
            out.append(Question(f"L{level}-{got:03d}", level, kind, text, answer))
            got += 1
    return out
