"""Built-in voting tasks and the name -> factory registry."""
from __future__ import annotations

from ponder.common.errors import InvalidArgument
from ponder.voting.tasks.addition import Addition, AdditionState, ColumnSum
from ponder.voting.tasks.base import StepPrompt, Task
from ponder.voting.tasks.counting import CountingAddition, CountState
from ponder.voting.tasks.hanoi import Hanoi, HanoiState, HanoiStep

__all__ = [
    "Addition", "AdditionState", "ColumnSum", "CountingAddition", "CountState", "DECOMPOSITIONS", "Hanoi", "HanoiState", "HanoiStep",
    "StepPrompt", "Task", "TASKS", "make_task",
]

# Accepted task names; "add" is the CLI's short form of "addition".
TASKS = ("hanoi", "addition", "add")
# How long addition is cut into steps: one column sum per step, or one successor per step.
DECOMPOSITIONS = {"column": Addition, "count": CountingAddition}


def make_task(name: str, *, disks: int = 0, digits: int = 0, a: str = "", b: str = "", seed: int = 0,
              decomposition: str = "", vary_prompts: bool = False) -> Task:
    """Build a task by name; InvalidArgument names the bad field."""
    if name == "hanoi":
        return Hanoi(disks)
    if name in ("addition", "add"):
        cls = DECOMPOSITIONS.get(decomposition or "column")
        if cls is None:
            raise InvalidArgument("addition.decomposition",
                                  f"unknown {decomposition!r}; known: {', '.join(DECOMPOSITIONS)}")
        return cls(digits, a, b, seed, vary_prompts)
    raise InvalidArgument("task", f"unknown task {name!r}; known tasks: hanoi, addition")
