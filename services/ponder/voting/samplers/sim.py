"""``sim:P``: a scripted test double that answers correctly with probability P. Not a model.

Each sample is correct with probability ``p`` (the task's oracle result);
otherwise it is the step's one plausible wrong answer, chosen once per step
from the sampler's seed, so all wrong samples of a step agree. That is the
worst case for voting and the case in which ``kchoice``'s formulas are exact.
With ``red_flag_rate`` a sample is instead malformed text (a red flag). Every
sample and the sampler's name say it is simulated.
"""
from __future__ import annotations

import random
from typing import Hashable

from ponder.common.config import Cost
from ponder.common.errors import InvalidArgument
from ponder.voting.rule import RedFlag
from ponder.voting.samplers.base import Sample, Sampler
from ponder.voting.tasks.base import StepPrompt, Task

MALFORMED = "[simulated] I am not sure what the next step is."


class ScriptedSampler(Sampler):
    simulated = True

    def __init__(self, p: float, seed: int = 0, red_flag_rate: float = 0.0, cost: Cost | None = None):
        if not 0.0 <= p <= 1.0:
            raise InvalidArgument("sampler", f"sim:P needs P in [0, 1], got {p}")
        if not 0.0 <= red_flag_rate < 1.0:
            raise InvalidArgument("sampler", f"sim red-flag rate must be in [0, 1), got {red_flag_rate}")
        self.p, self.seed, self.red_flag_rate = p, seed, red_flag_rate
        self.cost = cost or Cost()
        self.name = f"sim:{p:g} (simulated)" if not red_flag_rate else f"sim:{p:g}:{red_flag_rate:g} (simulated)"

    def wrong_for_step(self, task: Task, state, step: int) -> Hashable:
        return task.plausible_error(state, random.Random(self.seed * 1_000_003 + step))

    async def sample(self, prompt: StepPrompt, seed: int) -> Sample:
        rng = random.Random(seed)
        task, state = prompt.task, prompt.state
        if self.red_flag_rate and rng.random() < self.red_flag_rate:
            text = MALFORMED
        elif rng.random() < self.p:
            text = task.render(task.oracle(state))
        else:
            text = task.render(self.wrong_for_step(task, state, prompt.step))
        prompt_tokens, output_tokens = max(1, len(prompt.text) // 4), max(1, len(text) // 4)
        return Sample(text, prompt_tokens, output_tokens, "stop", self.cost.units(prompt_tokens, output_tokens), True)

    def outcomes(self, task: Task, state, step: int, n: int, rng: random.Random) -> list:
        """n parsed outcomes at once, skipping text: the benchmark's fast path, same distribution."""
        right = wrong = None
        out = []
        for _ in range(n):
            if self.red_flag_rate and rng.random() < self.red_flag_rate:
                out.append(RedFlag("unparseable", "simulated"))
            elif rng.random() < self.p:
                if right is None:
                    right = task.oracle(state)
                out.append(right)
            else:
                if wrong is None:
                    wrong = self.wrong_for_step(task, state, step)
                out.append(wrong)
        return out
