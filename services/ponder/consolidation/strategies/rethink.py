"""``rethink``: the pool's model re-represents the context in passes (sleep-time compute).

Pass ``i`` has the kind ``pass_kinds[i % len(pass_kinds)]`` (the ConsolidationPolicy's
passes, else re_represent then precompute_answers) and reads what the pass before
it left (the first reads the context), in chunks of at most ``max_input_chars``:

  re_represent        every fact, name and number as a compact list; replaces the text
  summarise           a short restatement keeping names and numbers; replaces the text
  precompute_answers  likely questions with their answers and the quantities the text
                      implies, worked out; appended under "Questions and answers:"

Each call writes at most ``output_budget`` tokens: ``max_output_share`` of the
tokens it reads (at least ``min_output_tokens``), capped by the pass's max tokens.
So re_represent and summarise shrink the text by about that share, and
precompute_answers adds at most that share of what it reads. Cost is the pool's
price of the tokens read and written.
A pool that is down raises PoolUnavailable: the job is retried with its finished
passes kept.
"""
from __future__ import annotations

import math

from ponder.common.config import RethinkSettings
from ponder.consolidation.strategies.base import StepContext, StepResult, Strategy
from ponder.v1 import common_pb2, pool_pb2

PROMPTS = {
    "re_represent": (
        "Rewrite the text below as a compact list of every fact, name and number in it, one short line each. "
        "Leave out nothing a question could ask about.\n\nText:\n{text}\n\nFacts:\n"
    ),
    "summarise": (
        "Restate the text below in as few sentences as possible, keeping every name and number.\n\n"
        "Text:\n{text}\n\nRestatement:\n"
    ),
    "precompute_answers": (
        "Notes about a text follow. Write {n} questions a reader is likely to ask about it, each followed by its "
        "answer, then the quantities the notes imply (totals, differences, rates), worked out.\n\n"
        "Notes:\n{text}\n\nQuestions and answers:\n"
    ),
}
QA_HEADER = "\n\nQuestions and answers:\n"


def chunks(text: str, max_chars: int) -> list[str]:
    """``text`` cut at paragraph, line or sentence ends into pieces of at most ``max_chars``
    (a single longer sentence is cut hard). Empty text gives []."""
    out, cur = [], ""
    for piece in _pieces(text, max_chars):
        if cur and len(cur) + 1 + len(piece) > max_chars:
            out.append(cur)
            cur = piece
        else:
            cur = f"{cur} {piece}" if cur else piece
    if cur:
        out.append(cur)
    return out


def _pieces(text: str, max_chars: int) -> list[str]:
    import re

    out = []
    for s in re.split(r"(?<=[.!?])\s+|\n+", text):
        s = s.strip()
        while len(s) > max_chars:
            out.append(s[:max_chars])
            s = s[max_chars:]
        if s:
            out.append(s)
    return out


def output_budget(input_chars: int, share: float, floor_tokens: int, cap_tokens: int) -> int:
    """Output tokens one call may write: ``share`` x the estimated tokens of its input
    (4 characters a token, rounded up), at least ``floor_tokens``, at most ``cap_tokens``."""
    return max(1, min(cap_tokens, max(floor_tokens, math.ceil(share * input_chars / 4.0))))


class Rethink(Strategy):
    name = "rethink"

    def __init__(self, settings: RethinkSettings):
        self.settings = settings

    def steps(self, passes: int) -> int:
        return passes

    async def _call(self, ctx: StepContext, prompt: str, max_tokens: int) -> pool_pb2.PoolGenerateResponse:
        req = pool_pb2.PoolGenerateRequest(
            prompt=prompt,
            sampling=common_pb2.SamplingParams(max_tokens=max_tokens, temperature=self.settings.temperature),
        )
        return await ctx.client.generate(req, self.settings.timeout_s)

    async def run_step(self, step: int, text: str, ctx: StepContext) -> StepResult:
        k = step % len(ctx.pass_kinds)
        kind = ctx.pass_kinds[k]
        max_tokens = ctx.pass_max_tokens[k] if k < len(ctx.pass_max_tokens) else self.settings.max_pass_tokens
        n = (ctx.num_questions[k] if k < len(ctx.num_questions) else 0) or 5
        body, _, qa = text.partition(QA_HEADER)
        source = text if kind == "precompute_answers" else body
        outs, t_in, t_out, cu = [], 0, 0, 0.0
        for piece in chunks(source, self.settings.max_input_chars):
            budget = output_budget(len(piece), self.settings.max_output_share, self.settings.min_output_tokens, max_tokens)
            resp = await self._call(ctx, PROMPTS[kind].format(text=piece, n=n), budget)
            outs.append(resp.text.strip())
            t_in += resp.prompt_tokens
            t_out += resp.output_tokens
            cu += ctx.cost.units(resp.prompt_tokens, resp.output_tokens)
        new = "\n".join(o for o in outs if o)
        if kind == "precompute_answers":
            result = body.strip() + QA_HEADER + new
        else:
            result = new + (QA_HEADER + qa if qa else "")
        return StepResult(result.strip(), t_in, t_out, cu)
