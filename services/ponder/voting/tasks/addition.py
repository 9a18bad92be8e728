"""Long addition of two N-digit numbers, one column (digit plus carry) per step.

Step i (from the least significant column) needs only a_i, b_i and the carry
in, so that is all its prompt holds: a few-shot list of column sums in the
form ``4+8=12`` (carry 0) and ``4+8+1=13`` (carry 1), then the open question.
A base model continues the pattern with the column sum; the parsed result is
(digit, carry out) = (sum mod 10, sum div 10), so "13" and "013" vote alike.
Red flags: not a number, or a sum no column can produce (over 9 + 9 + carry).
After N steps the last carry becomes the leading digit.
"""
from __future__ import annotations

import dataclasses
import random
import re

from ponder.common.errors import InvalidArgument
from ponder.voting.tasks.base import StepPrompt, Task

MAX_DIGITS = 10_000
# Column sums shown before every question: a fixed, balanced mix of carries.
SHOTS: tuple[tuple[int, int, int], ...] = (
    (4, 8, 0), (2, 6, 1), (9, 9, 1), (5, 0, 0), (3, 7, 1), (8, 4, 0), (1, 1, 1), (6, 5, 0),
    (7, 2, 1), (0, 3, 0), (9, 6, 0), (4, 4, 1), (2, 9, 0), (8, 8, 1), (5, 3, 0), (6, 7, 1),
)
_NUM_RE = re.compile(r"\s*(\d{1,3})\s*(?:$|\n)")


def _column(a: int, b: int, c: int) -> str:
    return f"{a}+{b}+1" if c else f"{a}+{b}"


FEW_SHOT = "".join(f"{_column(a, b, c)}={a + b + c}\n" for a, b, c in SHOTS)


@dataclasses.dataclass(frozen=True, slots=True)
class AdditionState:
    a: tuple[int, ...]  # digits, least significant first
    b: tuple[int, ...]
    pos: int = 0
    carry: int = 0
    out: tuple[int, ...] = ()  # sum digits so far, least significant first


@dataclasses.dataclass(frozen=True, slots=True)
class ColumnSum:
    digit: int
    carry: int


def _digits(value: str, field: str, n: int) -> tuple[int, ...]:
    if not value.isdigit():
        raise InvalidArgument(field, f"must be a string of decimal digits, got {value!r}")
    if len(value) > n:
        raise InvalidArgument(field, f"has {len(value)} digits, more than addition.digits={n}")
    return tuple(int(ch) for ch in reversed(value.zfill(n)))


def operands(digits: int, a: str, b: str, seed: int) -> tuple[str, str, tuple[int, ...], tuple[int, ...]]:
    """(a text, b text, a digits, b digits) of an addition of ``digits`` digits, least significant first;
    unset operands are drawn from ``seed``. InvalidArgument names the field of a bad one."""
    if not 1 <= digits <= MAX_DIGITS:
        raise InvalidArgument("addition.digits", f"must be in 1..{MAX_DIGITS}, got {digits}")
    rng = random.Random(seed)

    def pick() -> str:
        return str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(digits - 1))

    a_text, b_text = a or pick(), b or pick()
    return a_text, b_text, _digits(a_text, "addition.a", digits), _digits(b_text, "addition.b", digits)


class Addition(Task[AdditionState, ColumnSum]):
    name = "addition"
    decomposition = "column"

    def __init__(self, digits: int, a: str = "", b: str = "", seed: int = 0, vary_prompts: bool = False):
        self.vary_prompts = vary_prompts
        self.n = digits
        self.a_text, self.b_text, self.a, self.b = operands(digits, a, b, seed)
        self.max_tokens = 4

    def initial_state(self) -> AdditionState:
        return AdditionState(self.a, self.b)

    def total_steps(self) -> int:
        return self.n

    def done(self, state: AdditionState) -> bool:
        return state.pos >= self.n

    def prompt(self, state: AdditionState, step: int) -> StepPrompt:
        text = f"{FEW_SHOT}{_column(state.a[state.pos], state.b[state.pos], state.carry)}="
        return StepPrompt(text, self.max_tokens, ("\n",), step, self, state)

    def vary(self, prompt: StepPrompt, seed: int) -> StepPrompt:
        """With ``vary_prompts``: ten of the sixteen example sums, in a seed-chosen order."""
        if not self.vary_prompts:
            return prompt
        rng = random.Random(seed)
        shots = rng.sample(SHOTS, 10)
        s = prompt.state
        text = "".join(f"{_column(a, b, c)}={a + b + c}\n" for a, b, c in shots)
        return dataclasses.replace(prompt, text=f"{text}{_column(s.a[s.pos], s.b[s.pos], s.carry)}=")

    def parse(self, text: str, state: AdditionState) -> ColumnSum:
        m = _NUM_RE.match(text)
        if not m:
            raise ValueError(f"expected a column sum, got {text[:40]!r}")
        total = int(m.group(1))
        if total > 18 + state.carry:
            raise ValueError(f"column sum {total} is impossible (over 9+9+{state.carry})")
        return ColumnSum(total % 10, total // 10)

    def apply(self, state: AdditionState, result: ColumnSum) -> AdditionState:
        return AdditionState(state.a, state.b, state.pos + 1, result.carry, state.out + (result.digit,))

    def render(self, result: ColumnSum) -> str:
        return str(result.carry * 10 + result.digit)

    def oracle(self, state: AdditionState) -> ColumnSum:
        total = state.a[state.pos] + state.b[state.pos] + state.carry
        return ColumnSum(total % 10, total // 10)

    def plausible_error(self, state: AdditionState, rng: random.Random) -> ColumnSum:
        """Off by one, or the carry dropped or invented."""
        right = self.oracle(state)
        total = right.carry * 10 + right.digit
        options = [t for t in (total - 1, total + 1, total - 10, total + 10) if 0 <= t <= 18 + state.carry]
        t = options[rng.randrange(len(options))]
        return ColumnSum(t % 10, t // 10)

    def calibration_states(self, rng: random.Random, n: int) -> list[AdditionState]:
        out = []
        for _ in range(n):
            pos = rng.randrange(self.n)
            carry = 0
            digits = []
            for i in range(pos):
                t = self.a[i] + self.b[i] + carry
                digits.append(t % 10)
                carry = t // 10
            out.append(AdditionState(self.a, self.b, pos, carry, tuple(digits)))
        return out

    def describe(self, state: AdditionState) -> str:
        low = "".join(str(d) for d in reversed(state.out))
        return f"{self.a_text} + {self.b_text}: {state.pos}/{self.n} columns done, low digits {low or '-'}, carry {state.carry}"

    def answer(self, state: AdditionState) -> str:
        digits = "".join(str(d) for d in reversed(state.out))
        return (str(state.carry) if state.carry else "") + digits if self.done(state) else digits

    def expected(self) -> str:
        return str(int(self.a_text) + int(self.b_text))

    def verify(self, state: AdditionState) -> bool | None:
        return self.done(state) and self.answer(state).lstrip("0") == self.expected().lstrip("0")
