"""``softcot``: one sample from a SoftCoT pool with the assistant's soft thoughts in the
backbone's input (Xu et al., 2025).

Offered only on pools with a ``softcot`` block; it runs like ``single``, the
pool request asking for soft thoughts (``strategies.base.pool_request``). Its cost is the backbone's plain
sample plus the assistant's forward pass: the assistant reads the prompt (through
its ``assistant_template``) and ``num_thought_tokens`` placeholders at
``assistant_token_cu`` each; the soft tokens also lengthen the backbone's prompt.
Its expected accuracy is logit(p) + g, with g the pool's soft-thought gain: fitted
from feedback when the classifier's report carries one, else the prior
(``softcot_logit_gain``, 0 by default: the measured gains are small and not always
positive, so the tier wins only where feedback shows it pays).
"""
from __future__ import annotations

from ponder.common.config import PoolConfig
from ponder.router.catalog import estimate_tokens
from ponder.router.strategies.accuracy import shift_logit
from ponder.router.strategies.base import Gains
from ponder.router.strategies.single import Single
from ponder.router.types import Candidate, Request


class SoftCoT(Single):
    name = "softcot"

    def candidates(self, req: Request, pool: PoolConfig, catalog) -> list[Candidate]:
        sc = pool.softcot
        if sc is None:
            return []
        prompt = catalog.prompt_tokens(req)
        c = catalog.estimate(req, pool.name, self.name, 1, 0, sample_prompt_tokens=prompt + sc.num_thought_tokens + 2)
        assistant_tokens = prompt + estimate_tokens(len(sc.assistant_template) - len("{prompt}")) + sc.num_thought_tokens
        c.expected_compute_units = round(c.expected_compute_units + assistant_tokens * sc.assistant_token_cu, 3)
        c.note = f"{sc.num_thought_tokens} soft thoughts; assistant reads ~{assistant_tokens} tokens"
        return [c]

    def accuracy(self, cand: Candidate, p: float, gains: Gains) -> tuple[float, str]:
        g, src = gains.gain(self.name, cand.pool)
        return shift_logit(p, g), f"soft-thought gain {g:.2f} ({src})"
