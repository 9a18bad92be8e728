"""Long addition cut finer: every step is one successor (n -> n + 1), the smallest arithmetic step there is.

Column i adds the smaller of its digits, plus the carry in, to the larger by
counting on: from hi = max(a_i, b_i) the model names the next number
min(a_i, b_i) + carry times. Code only orders the two digits and, when the
count ends, splits it into digit (count mod 10) and carry (count div 10); it
never adds. A column with nothing to count on (the smaller digit 0, no carry)
takes no step. A correct 30-digit run takes about 3.3 steps per column.

Prompt: two counting runs as examples, then the column's count so far (its
own earlier winners), ``8, 9, 10,``; the model continues with the next number.
The fixed prompt keeps the examples, so consecutive steps share a prefix an
engine can cache (on a CPU that is several times faster, hence the default).
``vary`` (with ``vary_prompts``) draws other example runs
from each sample's seed, never one that contains the step's number, so the
samples of one step see different contexts (MAKER's decorrelation lever). The
answer is one number of at most two digits; anything else, or a number over
19 (no count here exceeds 19), is a red flag.
"""
from __future__ import annotations

import dataclasses
import random
import re

from ponder.voting.tasks.addition import operands
from ponder.voting.tasks.base import StepPrompt, Task

SHOTS = "3, 4, 5, 6\n12, 13, 14, 15\n"
MAX_COUNT = 19
_NUM_RE = re.compile(r"\s*(\d{1,2})\s*(?:[.,;]|$|\n)")


@dataclasses.dataclass(frozen=True, slots=True)
class CountState:
    pos: int  # column being added, least significant first
    carry: int  # carry into column ``pos``
    start: int  # where this column's count began (its larger digit)
    cur: int  # count so far in this column
    left: int  # successor steps still to take in this column
    out: tuple[int, ...] = ()  # sum digits so far, least significant first


def example_runs(n: int, rng: random.Random) -> str:
    """Two counting runs of four numbers from 0..19, neither containing ``n``."""
    starts = [s for s in range(0, MAX_COUNT - 2) if not s <= n <= s + 3]
    return "".join(", ".join(str(x) for x in range(s, s + 4)) + "\n" for s in rng.sample(starts, 2))


def count_prompt(start: int, cur: int, rng: random.Random | None) -> str:
    """The count so far (start..cur) after example runs; fixed examples when rng is None."""
    shots = SHOTS if rng is None else example_runs(cur, rng)
    return shots + ", ".join(str(x) for x in range(start, cur + 1)) + ","


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

    def __init__(self, digits: int, a: str = "", b: str = "", seed: int = 0, vary_prompts: bool = False):
        self.n = digits
        self.a_text, self.b_text, self.a, self.b = operands(digits, a, b, seed)
        # A space, two digits and the stop: Gemma spells numbers digit by digit, so 3 would cut " 10" short.
        self.max_tokens = 4
        self.vary_prompts = vary_prompts
        self._path: list[CountState] | None = None

    def _settle(self, pos: int, carry: int, out: tuple[int, ...]) -> CountState:
        """State at the start of column ``pos``, closing columns that need no step."""
        while pos < self.n:
            hi, lo = max(self.a[pos], self.b[pos]), min(self.a[pos], self.b[pos])
            if lo + carry:
                return CountState(pos, carry, hi, hi, lo + carry, out)
            out, carry, pos = out + (hi,), 0, pos + 1
        return CountState(pos, carry, 0, 0, 0, out)

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
        return StepPrompt(count_prompt(state.start, state.cur, None), self.max_tokens, ("\n", ","), step, self, state)

    def vary(self, prompt: StepPrompt, seed: int) -> StepPrompt:
        if not self.vary_prompts:
            return prompt
        st = prompt.state
        return dataclasses.replace(prompt, text=count_prompt(st.start, st.cur, random.Random(seed)))

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
