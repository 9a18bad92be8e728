"""What an answer cost: its measured usage, in tokens and compute units (pure)."""
from __future__ import annotations

from ponder.common.config import PonderConfig
from ponder.router.types import Answer, Plan, Request
from ponder.v1 import common_pb2


def usage(cfg: PonderConfig, req: Request, plan: Plan, answer: Answer, latency_ms: float) -> common_pb2.Usage:
    """Usage of ``answer``: tokens summed over samples, each priced by the pool that drew it
    (``SampleResult.pool``, else the plan's),
    plus what the pool reports spending beside them (a SoftCoT assistant's pass).

    Work measured elsewhere (the voting workers report ``compute_units`` and a
    sample count) is taken as reported. Context figures come from the resolved
    context: raw vs sent tokens, and the compute units the consolidated form
    saved on this request's prompts net of its amortised cost.
    """
    if answer.compute_units is not None:
        u = common_pb2.Usage(compute_units=round(answer.compute_units, 4), latency_ms=latency_ms,
                             samples=answer.sample_count or 0)
    else:
        pt = ot = th = 0
        cu = 0.0
        for s in answer.samples:
            pt += s.prompt_tokens
            ot += s.output_tokens
            th += s.thinking_tokens
            cu += cfg.pool(s.pool or plan.pool).cost.units(s.prompt_tokens, s.output_tokens) + s.extra_compute_units
        u = common_pb2.Usage(
            prompt_tokens=pt, output_tokens=ot, thinking_tokens=th, compute_units=round(cu, 4),
            latency_ms=latency_ms, time_to_first_token_ms=answer.ttft_ms, samples=len(answer.samples),
        )
    ctx = req.context
    if ctx is not None:
        u.context_tokens_raw = ctx.raw_tokens
        u.context_tokens_sent = ctx.sent_tokens
        if ctx.consolidated:
            reads = max(1, u.samples) * (2 if plan.thinking_budget else 1)
            saved = (ctx.raw_tokens - ctx.sent_tokens) * reads * cfg.pool(plan.pool).cost.prompt_token_cu
            u.consolidation_saved_cu = round(saved - ctx.amortised_cu, 4)
    return u
