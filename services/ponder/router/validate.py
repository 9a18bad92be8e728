"""Request validation: proto in, a ``Request`` out, or InvalidArgument naming the field.

Shape only: types, ranges a value can never leave, sizes. Whether a value
fits a pool or the routing config (pool names, sample and thinking limits, a
pool's max_tokens) is planning's business and is checked once, in a filter
(``router.policies.filters``). Each check names the exact proto field path so
a client in any language knows what to fix.
"""
from __future__ import annotations

import math
import uuid

from ponder.common.config import PonderConfig
from ponder.common.ids import check_key_id, check_request_id
from ponder.common.errors import InvalidArgument
from ponder.router.types import Request, Sampling
from ponder.v1 import router_pb2

ROLES = ("system", "user", "assistant")
MAX_MESSAGES = 512
MAX_STOP = 8
MAX_STOP_CHARS = 256
MAX_ID_CHARS = 128
MAX_LABELS = 32
MAX_COMPUTE_UNITS = 1e9
MAX_LATENCY_MS = 24 * 3600 * 1000.0
MAX_TOKENS = 131072


def _finite(field: str, v: float) -> float:
    if not math.isfinite(v):
        raise InvalidArgument(field, f"must be a finite number, got {v}")
    return v


def validate(msg: router_pb2.GenerateRequest, cfg: PonderConfig) -> Request:
    """Check every field against the config's limits; return the domain request."""
    limit = cfg.routing.max_prompt_chars
    if msg.prompt and msg.messages:
        raise InvalidArgument("messages", "give either prompt or messages, not both")
    if msg.messages:
        if len(msg.messages) > MAX_MESSAGES:
            raise InvalidArgument("messages", f"{len(msg.messages)} turns exceeds the limit of {MAX_MESSAGES}")
        total = 0
        for i, m in enumerate(msg.messages):
            if m.role not in ROLES:
                raise InvalidArgument(f"messages[{i}].role", f"must be one of {', '.join(ROLES)}, got {m.role!r}")
            total += len(m.content)
        if total == 0:
            raise InvalidArgument("messages", "all turns are empty")
        if total > limit:
            raise InvalidArgument("messages", f"{total} chars exceeds the limit of {limit} (routing.max_prompt_chars)")
    elif msg.HasField("task"):
        if not msg.task.task:
            raise InvalidArgument("task.task", "name the task (hanoi, addition)")
        if len(msg.prompt) > limit:
            raise InvalidArgument("prompt", f"{len(msg.prompt)} chars exceeds the limit of {limit} (routing.max_prompt_chars)")
    else:
        if not msg.prompt.strip():
            raise InvalidArgument("prompt", "empty: give a prompt or messages")
        if len(msg.prompt) > limit:
            raise InvalidArgument("prompt", f"{len(msg.prompt)} chars exceeds the limit of {limit} (routing.max_prompt_chars)")

    s = msg.sampling
    sampling = Sampling(stop=tuple(s.stop))
    if s.HasField("max_tokens"):
        if not 1 <= s.max_tokens <= MAX_TOKENS:
            raise InvalidArgument("sampling.max_tokens", f"must be in 1..{MAX_TOKENS}, got {s.max_tokens}")
        sampling.max_tokens = s.max_tokens
    if s.HasField("temperature"):
        if not 0.0 <= _finite("sampling.temperature", s.temperature) <= 2.0:
            raise InvalidArgument("sampling.temperature", f"must be in [0, 2], got {s.temperature}")
        sampling.temperature = s.temperature
    if s.HasField("top_p"):
        if not 0.0 < _finite("sampling.top_p", s.top_p) <= 1.0:
            raise InvalidArgument("sampling.top_p", f"must be in (0, 1], got {s.top_p}")
        sampling.top_p = s.top_p
    if s.HasField("top_k"):
        if s.top_k > 100_000:
            raise InvalidArgument("sampling.top_k", f"must be <= 100000, got {s.top_k}")
        sampling.top_k = s.top_k
    if s.HasField("seed"):
        sampling.seed = s.seed
    if len(s.stop) > MAX_STOP:
        raise InvalidArgument("sampling.stop", f"at most {MAX_STOP} stop strings, got {len(s.stop)}")
    for i, st in enumerate(s.stop):
        if not st or len(st) > MAX_STOP_CHARS:
            raise InvalidArgument(f"sampling.stop[{i}]", f"must be 1..{MAX_STOP_CHARS} chars")

    b = msg.budget
    max_cu = max_lat = None
    if b.HasField("max_compute_units"):
        max_cu = _finite("budget.max_compute_units", b.max_compute_units)
        if not 0 < max_cu <= MAX_COMPUTE_UNITS:
            raise InvalidArgument("budget.max_compute_units", f"must be in (0, {MAX_COMPUTE_UNITS:g}], got {max_cu}")
    if b.HasField("max_latency_ms"):
        max_lat = _finite("budget.max_latency_ms", b.max_latency_ms)
        if not 0 < max_lat <= MAX_LATENCY_MS:
            raise InvalidArgument("budget.max_latency_ms", f"must be in (0, {MAX_LATENCY_MS:g}], got {max_lat}")

    h = msg.hints
    if len(h.pool) > MAX_ID_CHARS:
        raise InvalidArgument("hints.pool", f"at most {MAX_ID_CHARS} chars")
    if len(h.strategy) > MAX_ID_CHARS:
        raise InvalidArgument("hints.strategy", f"at most {MAX_ID_CHARS} chars")
    samples = thinking = None
    if h.HasField("samples"):
        if h.samples < 1:
            raise InvalidArgument("hints.samples", f"must be >= 1, got {h.samples}")
        samples = h.samples
    if h.HasField("thinking_budget"):
        thinking = h.thinking_budget

    if len(msg.request_id) > MAX_ID_CHARS:
        raise InvalidArgument("request_id", f"at most {MAX_ID_CHARS} chars")
    if msg.request_id:
        check_request_id("request_id", msg.request_id)
    if len(msg.context_id) > MAX_ID_CHARS:
        raise InvalidArgument("context_id", f"at most {MAX_ID_CHARS} chars")
    if msg.context_id:
        check_key_id("context_id", msg.context_id)  # part of a Redis key
    if len(msg.labels) > MAX_LABELS:
        raise InvalidArgument("labels", f"at most {MAX_LABELS} labels")

    return Request(
        request_id=msg.request_id or uuid.uuid4().hex,
        prompt=msg.prompt,
        messages=tuple((m.role, m.content) for m in msg.messages),
        sampling=sampling,
        max_compute_units=max_cu,
        max_latency_ms=max_lat,
        context_id=msg.context_id,
        hint_pool=h.pool,
        hint_strategy=h.strategy,
        hint_samples=samples,
        hint_thinking_budget=thinking,
        labels=dict(msg.labels),
        task=msg.task if msg.HasField("task") else None,
    )
