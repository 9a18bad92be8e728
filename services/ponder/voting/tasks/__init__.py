"""Built-in voting tasks and the name -> factory registry."""
from __future__ import annotations

from ponder.common.errors import InvalidArgument
from ponder.voting.tasks.addition import Addition, AdditionState, ColumnSum
from ponder.voting.tasks.base import StepPrompt, Task
from ponder.voting.tasks.hanoi import Hanoi, HanoiState, HanoiStep

__all__ = [
    "Addition", "AdditionState", "ColumnSum", "Hanoi", "HanoiState", "HanoiStep",
    "StepPrompt", "Task", "TASKS", "make_task",
]

# Accepted task names; "add" is the CLI's short form of "addition".
TASKS = ("hanoi", "addition", "add")


def make_task(name: str, *, disks: int = 0, digits: int = 0, a: str = "", b: str = "", seed: int = 0) -> Task:
    """Build a task by name; InvalidArgument names the bad field."""
    if name == "hanoi":
        return Hanoi(disks)
    if name in ("addition", "add"):
        return Addition(digits, a, b, seed)
    raise InvalidArgument("task", f"unknown task {name!r}; known tasks: hanoi, addition")
