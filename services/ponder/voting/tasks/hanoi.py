"""Towers of Hanoi as in MAKER: one move per step; the answer gives the move and the next state.

Pegs are 0, 1, 2 and disks 1 (smallest) .. n; a state lists each peg bottom to
top. The prompt carries only the current pegs and the previous move, plus the
strategy that makes every step decidable from them: odd-numbered moves move
disk 1 one peg around the cycle (0->1->2->0 for even n, 0->2->1->0 for odd n),
even-numbered moves make the only legal move not involving disk 1. A correct
run takes 2^n - 1 moves and ends with every disk on peg 2. The winner's
``next_state`` becomes the state, as in MAKER, so a wrong step derails the run.
"""
from __future__ import annotations

import dataclasses
import json
import random
import re

from ponder.common.errors import InvalidArgument
from ponder.voting.tasks.base import StepPrompt, Task

Pegs = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
Move = tuple[int, int, int]  # (disk, from peg, to peg)

_MOVE_RE = re.compile(r"move\s*=\s*(\[[^\[\]]*\])")
_STATE_RE = re.compile(r"next_state\s*=\s*(\[\s*\[.*?\]\s*\])", re.S)
MAX_DISKS = 40


@dataclasses.dataclass(frozen=True, slots=True)
class HanoiState:
    pegs: Pegs
    prev: Move | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class HanoiStep:
    move: Move
    next_pegs: Pegs


def apply_move(pegs: Pegs, move: Move) -> Pegs:
    disk, src, dst = move
    out = list(pegs)
    out[src] = pegs[src][:-1]
    out[dst] = pegs[dst] + (disk,)
    return (out[0], out[1], out[2])


def state_after(n: int, t: int) -> Pegs:
    """Pegs after the first t moves of the optimal n-disk solution (O(n))."""
    pegs: list[list[int]] = [[], [], []]
    src, dst, aux = 0, 2, 1
    for d in range(n, 0, -1):
        half = 1 << (d - 1)
        if t < half:
            pegs[src].append(d)
            dst, aux = aux, dst
        else:
            pegs[dst].append(d)
            t -= half
            src, aux = aux, src
    return (tuple(pegs[0]), tuple(pegs[1]), tuple(pegs[2]))


class Hanoi(Task[HanoiState, HanoiStep]):
    name = "hanoi"

    def __init__(self, disks: int):
        if not 1 <= disks <= MAX_DISKS:
            raise InvalidArgument("hanoi.disks", f"must be in 1..{MAX_DISKS}, got {disks}")
        self.n = disks
        self.direction = 1 if disks % 2 == 0 else 2  # +1 or -1 mod 3
        order = "0 -> 1 -> 2 -> 0" if self.direction == 1 else "0 -> 2 -> 1 -> 0"
        self._head = (
            f"Towers of Hanoi with {disks} disks numbered 1 (smallest) to {disks} on pegs 0, 1 and 2. "
            "Each peg is listed bottom to top. A disk may never be placed on a smaller disk. "
            "The goal is to move every disk to peg 2.\n"
            f"Strategy: if the previous move did not move disk 1, move disk 1 one peg along {order}. "
            "Otherwise make the only legal move that does not involve disk 1.\n"
        )
        self._tail = (
            "Answer with exactly two lines:\n"
            "move = [disk, from_peg, to_peg]\n"
            "next_state = [[peg 0], [peg 1], [peg 2]]\n"
        )
        self.max_tokens = 32 + 6 * disks

    def initial_state(self) -> HanoiState:
        return HanoiState((tuple(range(self.n, 0, -1)), (), ()))

    def total_steps(self) -> int:
        return (1 << self.n) - 1

    def done(self, state: HanoiState) -> bool:
        return len(state.pegs[2]) == self.n

    def prompt(self, state: HanoiState, step: int) -> StepPrompt:
        prev = "none" if state.prev is None else json.dumps(list(state.prev))
        text = (
            f"{self._head}Previous move: {prev}\nCurrent state: {json.dumps([list(p) for p in state.pegs])}\n"
            f"{self._tail}"
        )
        return StepPrompt(text, self.max_tokens, ("\n\n",), step, self, state)

    def parse(self, text: str, state: HanoiState) -> HanoiStep:
        m, s = _MOVE_RE.findall(text), _STATE_RE.findall(text)
        if len(m) != 1 or len(s) != 1:
            raise ValueError("expected exactly one 'move = [...]' and one 'next_state = [[...], ...]' line")
        move = json.loads(m[0])
        pegs = json.loads(s[0])
        if len(move) != 3 or not all(isinstance(x, int) for x in move):
            raise ValueError(f"move must be three integers, got {m[0]}")
        disk, src, dst = move
        if not (1 <= disk <= self.n and src in (0, 1, 2) and dst in (0, 1, 2) and src != dst):
            raise ValueError(f"move {move} is out of range")
        if len(pegs) != 3 or not all(isinstance(p, list) and all(isinstance(x, int) for x in p) for p in pegs):
            raise ValueError("next_state must be three lists of integers")
        if sorted(x for p in pegs for x in p) != list(range(1, self.n + 1)):
            raise ValueError(f"next_state must hold each disk 1..{self.n} exactly once")
        return HanoiStep((disk, src, dst), (tuple(pegs[0]), tuple(pegs[1]), tuple(pegs[2])))

    def apply(self, state: HanoiState, result: HanoiStep) -> HanoiState:
        return HanoiState(result.next_pegs, result.move)

    def render(self, result: HanoiStep) -> str:
        return f"move = {json.dumps(list(result.move))}\nnext_state = {json.dumps([list(p) for p in result.next_pegs])}"

    def legal_moves(self, pegs: Pegs) -> list[Move]:
        out = []
        for src in range(3):
            if not pegs[src]:
                continue
            disk = pegs[src][-1]
            for dst in range(3):
                if dst != src and (not pegs[dst] or pegs[dst][-1] > disk):
                    out.append((disk, src, dst))
        return out

    def oracle_move(self, state: HanoiState) -> Move:
        pegs = state.pegs
        if state.prev is None or state.prev[0] != 1:
            src = next(i for i in range(3) if pegs[i] and pegs[i][-1] == 1)
            return (1, src, (src + self.direction) % 3)
        a, b = [i for i in range(3) if not (pegs[i] and pegs[i][-1] == 1)]
        if not pegs[a] or (pegs[b] and pegs[b][-1] < pegs[a][-1]):
            a, b = b, a
        return (pegs[a][-1], a, b)

    def oracle(self, state: HanoiState) -> HanoiStep:
        move = self.oracle_move(state)
        return HanoiStep(move, apply_move(state.pegs, move))

    def plausible_error(self, state: HanoiState, rng: random.Random) -> HanoiStep:
        """Another legal move with its next state (disk 1 the wrong way, or the other disk's move)."""
        right = self.oracle_move(state)
        wrong = [m for m in self.legal_moves(state.pegs) if m != right]
        move = wrong[rng.randrange(len(wrong))]
        return HanoiStep(move, apply_move(state.pegs, move))

    def calibration_states(self, rng: random.Random, n: int) -> list[HanoiState]:
        out = []
        for _ in range(n):
            t = rng.randrange(self.total_steps())
            pegs = state_after(self.n, t)
            prev = None
            if t:
                before = state_after(self.n, t - 1)
                src = next(i for i in range(3) if len(before[i]) > len(pegs[i]))
                dst = next(i for i in range(3) if len(before[i]) < len(pegs[i]))
                prev = (before[src][-1], src, dst)
            out.append(HanoiState(pegs, prev))
        return out

    def describe(self, state: HanoiState) -> str:
        return json.dumps({"pegs": [list(p) for p in state.pegs], "previous_move": list(state.prev) if state.prev else None})

    def answer(self, state: HanoiState) -> str:
        return json.dumps([list(p) for p in state.pegs])

    def verify(self, state: HanoiState) -> bool | None:
        return self.done(state)
