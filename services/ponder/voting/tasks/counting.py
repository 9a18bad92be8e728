"""Long addition cut finer: every step is one successor (n -> n + 1), the smallest arithmetic step there is.

Column i adds the smaller of its digits, plus the carry in, to the larger by
counting on: from hi = max(a_i, b_i) the model names the next number
min(a_i, b_i) + carry times. Code only orders the two digits and, when the
count ends, splits it into digit (count mod 10) and carry (count div 10); it
never adds. A column with nothing to count on (the smaller digit 0, no carry)
takes no step. A correct 30-digit run takes about 3.3 steps per column.

Prompt: a few successor examples then the open one, in one of several
phrasings ("after 7 comes 8", "7 + 1 = 8", ...). ``vary`` draws the phrasing
and the examples from each sample's seed, so samples of one step differ in
wording and exemplars (MAKER's decorrelation lever); the example numbers never
include the step's own. The answer is one number of at most two digits;
anything else, or a number over 19 (no count here exceeds 19), is a red flag.
"""
from __future__ import annotations

import dataclasses
import random
import re

from ponder.voting.tasks.addition import _digits, MAX_DIGITS
from ponder.common.errors import InvalidArgument
from ponder.voting.tasks.base import StepPrompt, Task

# (example line for n, question prefix for n): the answer follows the prefix.
PHRASINGS: tuple[tuple[str, str], ...] = (
    ("after {n} comes {m}", "after {n} comes"),
    ("{n} + 1 = {m}", "{n} + 1 ="),
    ("the number after {n} is {m}", "the number after {n} is"),
    ("one more than {n} is {m}", "one more than {n} is"),
    ("{n}, then {m}", "{n}, then"),
)
EXAMPLES = 6
MAX_COUNT = 19
_NUM_RE = re.compile(r"\s*(\d{1,2})\s*(?:[.,;]|$|\n)")


@dataclasses.dataclass(frozen=True, slots=True)
class CountState:
    pos: int  # column being added, least significant first
    carry: int  # carry into column ``pos``
    cur: int  # count so far in this column
    left: int  # successor steps still to take in this column
    out: tuple[int, ...] = ()  # sum digits so far, least significant first


def successor_prompt(n: int, phrasing: int, rng: random.Random | None) -> str:
    """Few-shot successor prompt for ``n``; rng=None gives the fixed examples (greedy use)."""
    line, ask = PHRASINGS[phrasing % len(PHRASINGS)]
    pool = [x for x in range(MAX_COUNT) if x != n]
    xs = rng.sample(pool, EXAMPLES) if rng is not None else [x for x in (3, 11, 6, 15, 0, 8, 13, 2) if x != n][:EXAMPLES]
    return "".join(line.format(n=x, m=x + 1) + "\n" for x in xs) + ask.format(n=n)


def parse_count(text: str) -> int:
    m = _NUM_RE.match(text)
    if not m:
        raise ValueError(f"expected one number, got {text[:40]!r}")
    v = int(m.group(1))
    if v > MAX_COUNT:
        raise ValueError(f"{v} is over {MAX_COUNT}, which no count reaches")
    return v


class CountingAddition(Task[CountState, int]):
    name = "addition"
    decomposition = "count"

    def __init__(self, digits: int, a: str = "", b: str = "", seed: int = 0):
        if not 1 <= digits <= MAX_DIGITS:
            raise InvalidArgument("addition.digits", f"must be in 1..{MAX_DIGITS}, got {digits}")
        rng = random.Random(seed)

        def pick() -> str:
            return str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(digits - 1))

        self.n = digits
        self.a_text, self.b_text = a or pick(), b or pick()
        self.a = _digits(self.a_text, "addition.a", digits)
        self.b = _digits(self.b_text, "addition.b", digits)
        self.max_tokens = 3
        self._path: list[CountState] | None = None

    def _settle(self, pos: int, carry: int, out: tuple[int, ...]) -> CountState:
        """State at the start of column ``pos``, closing columns that need no step."""
        while pos < self.n:
            hi, lo = max(self.a[pos], self.b[pos]), min(self.a[pos], self.b[pos])
            if lo + carry:
                return CountState(pos, carry, hi, lo + carry, out)
            out, carry, pos = out + (hi,), 0, pos + 1
        return CountState(pos, carry, 0, 0, out)

    def initial_state(self) -> CountState:
        return self._settle(0, 0, ())

    def correct_path(self) -> list[CountState]:
        """Every state a correct run visits before each of its steps."""
        if self._path is None:
            path, s = [], self.initial_state()
            while not self.done(s):
                path.append(s)
                s = self.apply(s, s.cur + 1)
            self._path = path
        return self._path

    def total_steps(self) -> int:
        return len(self.correct_path())

    def done(self, state: CountState) -> bool:
        return state.pos >= self.n

    def prompt(self, state: CountState, step: int) -> StepPrompt:
        return StepPrompt(successor_prompt(state.cur, 0, None), self.max_tokens, ("\n",), step, self, state)

    def vary(self, prompt: StepPrompt, seed: int) -> StepPrompt:
        rng = random.Random(seed)
        text = successor_prompt(prompt.state.cur, rng.randrange(len(PHRASINGS)), rng)
        return dataclasses.replace(prompt, text=text)

    def parse(self, text: str, state: CountState) -> int:
        return parse_count(text)

    def apply(self, state: CountState, result: int) -> CountState:
        if state.left > 1:
            return dataclasses.replace(state, cur=result, left=state.left - 1)
        return self._settle(state.pos + 1, result // 10, state.out + (result % 10,))

    def render(self, result: int) -> str:
        return str(result)

    def oracle(self, state: CountState) -> int:
        return state.cur + 1

    def plausible_error(self, state: CountState, rng: random.Random) -> int:
        """Skipping a number, repeating it, or counting down."""
        options = [v for v in (state.cur + 2, state.cur, state.cur - 1) if 0 <= v <= MAX_COUNT]
        return options[rng.randrange(len(options))]

    def calibration_states(self, rng: random.Random, n: int) -> list[CountState]:
        path = self.correct_path()
        return [path[rng.randrange(len(path))] for _ in range(n)] if path else []

    def describe(self, state: CountState) -> str:
        low = "".join(str(d) for d in reversed(state.out))
        return (f"{self.a_text} + {self.b_text}: {state.pos}/{self.n} columns done, low digits {low or '-'}, "
                f"carry {state.carry}, counting at {state.cur} with {state.left} to go")

    def answer(self, state: CountState) -> str:
        digits = "".join(str(d) for d in reversed(state.out))
        return (str(state.carry) if state.carry else "") + digits if self.done(state) else digits

    def expected(self) -> str:
        return str(int(self.a_text) + int(self.b_text))

    def verify(self, state: CountState) -> bool | None:
        return self.done(state) and self.answer(state).lstrip("0") == self.expected().lstrip("0")
