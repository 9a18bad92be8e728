"""First-to-ahead-by-k voting for one step.

Rule: samples are drawn for a step and each valid sample votes for its parsed
result. The first result whose votes reach (the most votes of any *other*
result) + k wins; alone, a result wins at k votes. Red-flagged samples (too
long, unparseable) are drawn and paid for but never vote.

Drawing: a candidate needs at least ``k - lead`` more votes to win, where
``lead`` is the current leader's margin over the runner-up. So the first k
samples go out in parallel, and every later batch is exactly that lower bound:
no decision can come before the batch's last sample, which makes batched
drawing decide the same winner with the same number of samples as drawing one
at a time, with no wasted samples. When ``max_samples`` samples have been
drawn without a winner, ``SampleCapReached`` is raised.

``vote_step`` (async) and ``vote_sync`` share ``VoteCounter``; the sync one
exists for scripted samplers in benchmarks, where an event loop per sample
would dominate the run time.
"""
from __future__ import annotations

import dataclasses
from typing import Awaitable, Callable, Hashable, Sequence

from ponder.common.errors import InvalidArgument
from ponder.voting.errors import SampleCapReached


@dataclasses.dataclass(frozen=True, slots=True)
class RedFlag:
    """A discarded sample; ``reason`` is ``too_long`` or ``unparseable``."""

    reason: str
    detail: str = ""


Outcome = Hashable  # a parsed step result, or a RedFlag


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    winner: Hashable
    votes: dict  # result -> votes, in first-seen order
    red_flags: int
    red_flag_reasons: dict  # reason -> count
    samples: int


class VoteCounter:
    """Vote tally for one step; ``add`` returns True once a result leads by k."""

    __slots__ = ("k", "votes", "red_flags", "red_flag_reasons", "samples", "winner")

    def __init__(self, k: int):
        if k < 1:
            raise InvalidArgument("k", f"must be >= 1, got {k}")
        self.k = k
        self.votes: dict = {}
        self.red_flags = 0
        self.red_flag_reasons: dict[str, int] = {}
        self.samples = 0
        self.winner: Hashable | None = None

    def lead(self) -> int:
        """Leader's votes minus the runner-up's (0 before any vote)."""
        first = second = 0
        for v in self.votes.values():
            if v > first:
                first, second = v, first
            elif v > second:
                second = v
        return first - second

    def needed(self) -> int:
        """Fewest further samples after which some result could have won (>= 1)."""
        return self.k - self.lead()

    def add(self, outcome: Outcome) -> bool:
        self.samples += 1
        if isinstance(outcome, RedFlag):
            self.red_flags += 1
            self.red_flag_reasons[outcome.reason] = self.red_flag_reasons.get(outcome.reason, 0) + 1
            return False
        n = self.votes.get(outcome, 0) + 1
        self.votes[outcome] = n
        other = 0
        for key, v in self.votes.items():
            if v > other and key != outcome:
                other = v
        if n >= other + self.k:
            self.winner = outcome
            return True
        return False

    def consume(self, outcomes: Sequence[Outcome]) -> bool:
        """Count outcomes in order; stop voting at the first win (later ones are only counted as samples)."""
        for i, o in enumerate(outcomes):
            if self.add(o):
                self.samples += len(outcomes) - i - 1
                return True
        return False

    def decision(self) -> Decision:
        return Decision(self.winner, dict(self.votes), self.red_flags, dict(self.red_flag_reasons), self.samples)

    def _batch(self, max_samples: int) -> int:
        room = max_samples - self.samples
        if room <= 0:
            raise SampleCapReached(max_samples, self.k, dict(self.votes), self.red_flags)
        return min(self.needed(), room)


async def vote_step(draw: Callable[[int], Awaitable[Sequence[Outcome]]], k: int, max_samples: int) -> Decision:
    """Draw outcomes in batches (``draw(n)`` returns n outcomes) until one leads by k."""
    counter = VoteCounter(k)
    while True:
        if counter.consume(await draw(counter._batch(max_samples))):
            return counter.decision()


def vote_sync(draw: Callable[[int], Sequence[Outcome]], k: int, max_samples: int) -> Decision:
    """``vote_step`` for a synchronous ``draw`` (scripted samplers)."""
    counter = VoteCounter(k)
    while True:
        if counter.consume(draw(counter._batch(max_samples))):
            return counter.decision()
