"""OpenTelemetry GenAI semantic-convention attributes for a router request span (pure).

Follows the ``gen_ai.*`` conventions (operation, request parameters, response,
usage) so trace backends that understand LLM spans show ponder's requests as
such; ponder's own plan attributes (``ponder.*``) sit beside them.
"""
from __future__ import annotations

from ponder.router.types import Answer, Plan, Request
from ponder.v1 import common_pb2

AUTO_MODEL = "ponder/auto"


def request_attributes(req: Request) -> dict:
    """Attributes known once the request is validated."""
    s = req.sampling
    out = {
        "gen_ai.operation.name": "chat" if req.messages else "text_completion",
        "gen_ai.provider.name": "ponder",
        "gen_ai.request.model": req.hint_pool or AUTO_MODEL,
        "gen_ai.request.id": req.request_id,
    }
    for key, v in (("max_tokens", s.max_tokens), ("temperature", s.temperature), ("top_p", s.top_p),
                   ("top_k", s.top_k), ("seed", s.seed)):
        if v is not None:
            out[f"gen_ai.request.{key}"] = v
    if s.stop:
        out["gen_ai.request.stop_sequences"] = list(s.stop)
    if req.hint_samples:
        out["gen_ai.request.choice.count"] = req.hint_samples
    return out


def response_attributes(req: Request, plan: Plan, answer: Answer, usage: common_pb2.Usage) -> dict:
    """Attributes of an answered request: the model that answered, finish reason and token usage."""
    return {
        "gen_ai.response.id": req.request_id,
        "gen_ai.response.model": answer.model or plan.pool,
        "gen_ai.response.finish_reasons": [answer.finish_reason or "stop"],
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "ponder.usage.thinking_tokens": usage.thinking_tokens,
        "ponder.usage.compute_units": usage.compute_units,
        "ponder.plan.samples": plan.samples,
        "ponder.plan.thinking_budget": plan.thinking_budget,
    }
