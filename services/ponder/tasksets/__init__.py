"""Task sets with known answers and the multi-sample outcome tables drawn on them.

A task set is a named generator ``(n, seed) -> list[Question]``, registered
once (a duplicate name fails at import).
"""
from __future__ import annotations

from typing import Callable

from ponder.common.errors import InvalidArgument
from ponder.tasksets.arith import Question, parse_answer
from ponder.tasksets.arith import generate as _arith

TASKSETS: dict[str, Callable[[int, int], list[Question]]] = {}


def register(name: str, gen: Callable[[int, int], list[Question]]) -> None:
    if name in TASKSETS:
        raise ValueError(f"task set {name!r} is already registered")
    TASKSETS[name] = gen


def make_taskset(name: str, n: int, seed: int = 0) -> list[Question]:
    """The first n questions of a task set; InvalidArgument naming ``taskset`` when unknown."""
    if name not in TASKSETS:
        raise InvalidArgument("taskset", f"unknown task set {name!r}; known: {', '.join(sorted(TASKSETS))}")
    return TASKSETS[name](n, seed)


register("arith", _arith)

__all__ = ["Question", "TASKSETS", "make_taskset", "parse_answer", "register"]
