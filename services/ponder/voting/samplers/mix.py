"""``mix:SPEC,SPEC,...``: each sample comes from one of several samplers, chosen by its seed.

Different models make different mistakes, so mixing them decorrelates a
step's errors (one of MAKER's levers). Sample seeds are hashes, so ``seed mod
len(samplers)`` spreads samples evenly over the members. The mix is simulated
only when every member is.
"""
from __future__ import annotations

from typing import Sequence

from ponder.common.errors import InvalidArgument
from ponder.voting.samplers.base import Sample, Sampler
from ponder.voting.tasks.base import StepPrompt


class MixedSampler(Sampler):
    def __init__(self, members: Sequence[Sampler]):
        if len(members) < 2:
            raise InvalidArgument("sampler", f"mix: needs at least two samplers, got {len(members)}")
        self.members = list(members)
        self.simulated = all(m.simulated for m in members)
        self.name = "mix:" + ",".join(m.name for m in members)

    def pick(self, seed: int) -> Sampler:
        return self.members[seed % len(self.members)]

    async def sample(self, prompt: StepPrompt, seed: int) -> Sample:
        return await self.pick(seed).sample(prompt, seed)
