"""OpenAI request bodies -> ``GenerateRequest``, and router answers -> OpenAI response bodies (pure).

A body is checked field by field: a parameter ponder does not implement is
refused by name (``UnsupportedParameter``), except the ones whose given value
changes nothing (``logprobs: false``, ``frequency_penalty: 0``, ...). The
router's own validation speaks in proto field paths; ``openai_param`` turns
those back into the parameter the client sent.

Mapping (documented in the README):

- ``model``: ``ponder/auto`` lets the router plan; a pool name forces that pool.
- ``max_completion_tokens`` / ``max_tokens`` -> ``sampling.max_tokens`` (answer
  tokens; a thinking phase is budgeted apart), ``temperature``, ``top_p``,
  ``stop`` (a string or a list), ``seed``.
- ``n`` > 1 (or ``best_of`` on completions) -> ``best_of_n`` with that many
  samples; chat answers return every sample as a choice.
- ``reasoning_effort``: ``none``/``minimal`` -> no thinking; ``low``, ``medium``,
  ``high`` -> the ``think`` strategy with 0.5x, 1x, 2x the pool's
  ``thinking.budget_tokens`` (the largest among thinking pools for
  ``ponder/auto``), capped at ``routing.max_thinking_tokens``.
- ``ponder``: ``{"budget": {"max_compute_units", "max_latency_ms"}, "strategy",
  "samples", "thinking_budget", "context_id", "labels", "request_id"}``.
"""
from __future__ import annotations

import time
from typing import Any

from google.protobuf.json_format import MessageToDict

from ponder.common.config import PonderConfig
from ponder.common.errors import InvalidArgument, NotFound, split_field
from ponder.v1 import common_pb2, router_pb2

AUTO_MODEL = "ponder/auto"
EFFORT_MULTIPLIER = {"none": 0.0, "minimal": 0.0, "low": 0.5, "medium": 1.0, "high": 2.0}
CHAT_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}

# Parameters accepted when their value is one of these (they then change nothing).
_NEUTRAL: dict[str, tuple] = {
    "logprobs": (None, False, 0), "top_logprobs": (None, 0), "frequency_penalty": (None, 0, 0.0),
    "presence_penalty": (None, 0, 0.0), "logit_bias": (None, {}), "tools": (None, []), "tool_choice": (None, "none"),
    "functions": (None, []), "parallel_tool_calls": (None, True, False), "response_format": (None, {"type": "text"}),
    "echo": (None, False), "suffix": (None, ""), "modalities": (None, ["text"]), "prediction": (None,),
    "audio": (None,), "web_search_options": (None,),
}
# Accepted and not needed by ponder.
_IGNORED = {"user", "store", "metadata", "service_tier", "safety_identifier", "prompt_cache_key"}
_COMMON = {"model", "max_tokens", "temperature", "top_p", "n", "stop", "seed", "stream", "stream_options", "ponder"}
CHAT_PARAMS = _COMMON | {"messages", "max_completion_tokens", "reasoning_effort"}
COMPLETION_PARAMS = _COMMON | {"prompt", "best_of", "reasoning_effort"}
_PONDER_PARAMS = {"budget", "strategy", "samples", "thinking_budget", "context_id", "labels", "request_id"}

# Router field paths -> the OpenAI parameter a client sent.
_PARAM_OF_FIELD = {
    "sampling.max_tokens": "max_tokens", "sampling.temperature": "temperature", "sampling.top_p": "top_p",
    "sampling.stop": "stop", "sampling.seed": "seed", "hints.pool": "model", "hints.strategy": "ponder.strategy",
    "hints.samples": "ponder.samples", "hints.thinking_budget": "ponder.thinking_budget",
    "budget.max_compute_units": "ponder.budget.max_compute_units", "budget.max_latency_ms": "ponder.budget.max_latency_ms",
    "context_id": "ponder.context_id", "request_id": "ponder.request_id", "labels": "ponder.labels",
}


class UnsupportedParameter(InvalidArgument):
    def __init__(self, param: str, detail: str = ""):
        super().__init__(param, f"unsupported parameter{': ' + detail if detail else ''}")


class UnknownModel(NotFound):
    def __init__(self, model: str, known: list[str]):
        self.model = model
        super().__init__(f"model: unknown model {model!r}; available: {', '.join(known)}")


def openai_param(field: str | None, origin: dict[str, str]) -> str | None:
    """The OpenAI parameter behind a router field path (``origin`` holds this request's own renames)."""
    if field is None:
        return None
    if field in origin:
        return origin[field]
    if field.startswith("sampling.stop["):
        return "stop" + field[len("sampling.stop"):]
    return _PARAM_OF_FIELD.get(field, field)


def error_param(err: Exception, origin: dict[str, str]) -> str | None:
    """The parameter an error names, in the client's terms (None when it names none)."""
    if isinstance(err, InvalidArgument):
        return openai_param(err.field, origin)
    if isinstance(err, NotFound):
        return split_field(err.message)[0]
    return None


def _check_params(body: dict, allowed: set[str]) -> None:
    for key, value in body.items():
        if key in allowed or key in _IGNORED:
            continue
        if key in _NEUTRAL and value in _NEUTRAL[key]:
            continue
        raise UnsupportedParameter(key, f"ponder does not implement {key!r}" + (
            f" (only {', '.join(repr(v) for v in _NEUTRAL[key] if v is not None)} accepted)" if key in _NEUTRAL else ""))


def _number(body: dict, key: str, kind: type, lo: float | None = None) -> Any:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int) and not float(v).is_integer()):
        raise InvalidArgument(key, f"must be {'an integer' if kind is int else 'a number'}, got {v!r}")
    v = kind(v)
    if lo is not None and v < lo:
        raise InvalidArgument(key, f"must be >= {lo}, got {v}")
    return v


def _text_content(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise UnsupportedParameter(f"{where}[{j}].type", f"only text parts are supported, got {kind!r}")
            parts.append(part["text"])
        return "".join(parts)
    raise InvalidArgument(where, f"must be a string or a list of text parts, got {type(content).__name__}")


def thinking_budget(effort: str, model_pool: str | None, cfg: PonderConfig) -> int:
    """Thinking tokens for a ``reasoning_effort``: its multiplier times the reference budget, in [0, max_thinking_tokens]."""
    if effort not in EFFORT_MULTIPLIER:
        raise InvalidArgument("reasoning_effort", f"must be one of {', '.join(EFFORT_MULTIPLIER)}, got {effort!r}")
    pools = [cfg.pool(model_pool)] if model_pool else cfg.pools
    budgets = [p.thinking.budget_tokens for p in pools if p.thinking is not None]
    if EFFORT_MULTIPLIER[effort] and not budgets:
        where = f"pool {model_pool!r} has" if model_pool else "no configured pool has"
        raise InvalidArgument("reasoning_effort", f"{effort!r} needs a thinking phase and {where} none")
    ref = max(budgets, default=0)
    return min(cfg.routing.max_thinking_tokens, int(round(ref * EFFORT_MULTIPLIER[effort])))


def to_generate_request(body: Any, cfg: PonderConfig, chat: bool) -> tuple[router_pb2.GenerateRequest, dict[str, str]]:
    """(the router request, renames: router field path -> the parameter the client used).

    Raises ``InvalidArgument`` naming the OpenAI parameter, ``UnsupportedParameter``
    for what ponder does not implement, ``UnknownModel`` for a model that is
    neither ``ponder/auto`` nor a configured pool.
    """
    if not isinstance(body, dict):
        raise InvalidArgument("body", "must be a JSON object")
    _check_params(body, CHAT_PARAMS if chat else COMPLETION_PARAMS)
    origin: dict[str, str] = {}
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidArgument("model", f"required: {AUTO_MODEL} or a pool name")
    if model != AUTO_MODEL and model not in cfg.pool_names:
        raise UnknownModel(model, [AUTO_MODEL, *cfg.pool_names])
    msg = router_pb2.GenerateRequest()
    if model != AUTO_MODEL:
        msg.hints.pool = model

    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidArgument("messages", "required: a non-empty list of {role, content}")
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise InvalidArgument(f"messages[{i}]", "must be an object with role and content")
            role = m.get("role")
            if role not in CHAT_ROLES:
                raise InvalidArgument(f"messages[{i}].role", f"must be one of {', '.join(CHAT_ROLES)}, got {role!r}")
            msg.messages.append(common_pb2.ChatMessage(role=CHAT_ROLES[role], content=_text_content(m.get("content"), f"messages[{i}].content")))
        origin["messages"] = "messages"
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise UnsupportedParameter("prompt", "give one prompt as a string (batches and token arrays are not supported)")
        msg.prompt = prompt

    max_tokens = _number(body, "max_tokens", int, 1)
    max_completion = _number(body, "max_completion_tokens", int, 1) if chat else None
    if max_tokens is not None and max_completion is not None and max_tokens != max_completion:
        raise InvalidArgument("max_completion_tokens", "give max_completion_tokens or max_tokens, not both")
    if max_completion is not None:
        msg.sampling.max_tokens, origin["sampling.max_tokens"] = max_completion, "max_completion_tokens"
    elif max_tokens is not None:
        msg.sampling.max_tokens = max_tokens
    for key in ("temperature", "top_p"):
        v = _number(body, key, float)
        if v is not None:
            setattr(msg.sampling, key, v)
    seed = _number(body, "seed", int, 0)
    if seed is not None:
        msg.sampling.seed = seed % 2**64
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidArgument("stop", "must be a string or a list of strings")
        msg.sampling.stop.extend(stops)

    _apply_ponder(body.get("ponder"), msg)
    n = _number(body, "n", int, 1) or 1
    best_of = _number(body, "best_of", int, 1) if not chat else None
    if best_of is not None and best_of < n:
        raise InvalidArgument("best_of", f"must be >= n ({n}), got {best_of}")
    if not chat and n > 1:
        raise UnsupportedParameter("n", "completions return one choice; use best_of to draw several samples")
    samples = best_of if best_of is not None and best_of > 1 else n
    if samples > 1:
        if msg.hints.strategy not in ("", "best_of_n"):
            raise InvalidArgument("n", f"n > 1 draws best_of_n samples; ponder.strategy is {msg.hints.strategy!r}")
        if msg.hints.HasField("samples") and msg.hints.samples != samples:
            raise InvalidArgument("n", f"{samples} disagrees with ponder.samples {msg.hints.samples}")
        msg.hints.strategy, msg.hints.samples = "best_of_n", samples
        param = "best_of" if best_of is not None and best_of > 1 else "n"
        origin.update({"hints.samples": param, "hints.strategy": param})

    effort = body.get("reasoning_effort")
    if effort is not None:
        budget = thinking_budget(effort, msg.hints.pool or None, cfg)
        if msg.hints.HasField("thinking_budget"):
            raise InvalidArgument("reasoning_effort", "give reasoning_effort or ponder.thinking_budget, not both")
        msg.hints.thinking_budget = budget
        origin["hints.thinking_budget"] = "reasoning_effort"
        if budget and not msg.hints.strategy:
            msg.hints.strategy, origin["hints.strategy"] = "think", "reasoning_effort"
    return msg, origin


def _apply_ponder(extra: Any, msg: router_pb2.GenerateRequest) -> None:
    if extra is None:
        return
    if not isinstance(extra, dict):
        raise InvalidArgument("ponder", "must be an object")
    for key in extra:
        if key not in _PONDER_PARAMS:
            raise UnsupportedParameter(f"ponder.{key}", f"known: {', '.join(sorted(_PONDER_PARAMS))}")
    budget = extra.get("budget") or {}
    if not isinstance(budget, dict) or set(budget) - {"max_compute_units", "max_latency_ms"}:
        raise InvalidArgument("ponder.budget", "must be an object with max_compute_units and/or max_latency_ms")
    for key in ("max_compute_units", "max_latency_ms"):
        v = _number(budget, key, float)
        if v is not None:
            setattr(msg.budget, key, v)
    for key, kind in (("strategy", str), ("context_id", str), ("request_id", str)):
        v = extra.get(key)
        if v is not None:
            if not isinstance(v, kind):
                raise InvalidArgument(f"ponder.{key}", "must be a string")
            if key == "strategy":
                msg.hints.strategy = v
            else:
                setattr(msg, key, v)
    for key in ("samples", "thinking_budget"):
        v = _number(extra, key, int, 0)
        if v is not None:
            setattr(msg.hints, key, v)
    labels = extra.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise InvalidArgument("ponder.labels", "must be an object of strings")
    msg.labels.update(labels)


# ---------------------------------------------------------------- answers
def usage_dict(u: common_pb2.Usage) -> dict:
    """OpenAI's usage: completion tokens include reasoning (thinking) tokens, as OpenAI counts them."""
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.prompt_tokens + u.output_tokens,
        "completion_tokens_details": {"reasoning_tokens": u.thinking_tokens},
    }


def ponder_dict(resp: router_pb2.GenerateResponse) -> dict:
    """ponder's own account of an answer: the plan it ran and what it cost."""
    d = lambda m: MessageToDict(m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)  # noqa: E731
    plan = d(resp.plan)
    plan.pop("candidates", None)
    chosen = list(resp.samples).index(resp.text) if resp.text in resp.samples else 0
    return {"request_id": resp.request_id, "plan": plan, "usage": d(resp.usage), "simulated": resp.simulated,
            "backend_model": resp.model, "chosen_index": chosen}


def plan_headers(plan: common_pb2.Plan, request_id: str) -> dict[str, str]:
    return {
        "x-ponder-request-id": request_id, "x-ponder-pool": plan.pool, "x-ponder-strategy": plan.strategy,
        "x-ponder-samples": str(plan.samples), "x-ponder-thinking-budget": str(plan.thinking_budget),
        "x-ponder-expected-compute-units": f"{plan.expected_compute_units:.6g}",
    }


def answer_headers(resp: router_pb2.GenerateResponse) -> dict[str, str]:
    h = plan_headers(resp.plan, resp.request_id)
    h["x-ponder-compute-units"] = f"{resp.usage.compute_units:.6g}"
    h["x-ponder-simulated"] = "true" if resp.simulated else "false"
    return h


def finish_reason(reason: str) -> str:
    return {"stop": "stop", "length": "length"}.get(reason, "stop")


def chat_completion(resp: router_pb2.GenerateResponse, model: str, created: int | None = None) -> dict:
    """A ``chat.completion`` object; every best_of_n sample is a choice, in sample order
    (as streamed), and ``ponder.chosen_index`` says which one best_of_n picked."""
    texts = list(resp.samples) or [resp.text]
    return {
        "id": f"chatcmpl-{resp.request_id}", "object": "chat.completion", "created": created or int(time.time()),
        "model": model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": finish_reason(resp.finish_reason),
                     "logprobs": None} for i, t in enumerate(texts)],
        "usage": usage_dict(resp.usage), "system_fingerprint": f"ponder-{resp.plan.pool}", "ponder": ponder_dict(resp),
    }


def completion(resp: router_pb2.GenerateResponse, model: str, created: int | None = None) -> dict:
    return {
        "id": f"cmpl-{resp.request_id}", "object": "text_completion", "created": created or int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": resp.text, "finish_reason": finish_reason(resp.finish_reason), "logprobs": None}],
        "usage": usage_dict(resp.usage), "system_fingerprint": f"ponder-{resp.plan.pool}", "ponder": ponder_dict(resp),
    }


def chunk(chat: bool, cid: str, model: str, created: int, index: int, text: str = "", thinking: bool = False,
          finish: str | None = None, first: bool = False) -> dict:
    """One streamed chunk; thinking text goes in ``delta.reasoning_content`` (chat) as vLLM and DeepSeek send it."""
    if chat:
        delta: dict = {}
        if first:
            delta["role"] = "assistant"
        if text:
            delta["reasoning_content" if thinking else "content"] = text
        choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [choice]}
    choice = {"index": index, "text": "" if thinking else text, "finish_reason": finish, "logprobs": None}
    return {"id": cid, "object": "text_completion", "created": created, "model": model, "choices": [choice]}
