"""One log line per answered or failed request on the ``ponder.requests`` logger (INFO).

The line carries ids, tenant, plan, status, latency and compute units. The
prompt is written only when ``router.log_prompts`` is on; API keys never are
(the key is checked by the auth interceptor and not kept). Nothing is
formatted unless the logger is enabled for INFO, so the request path pays
nothing by default.
"""
from __future__ import annotations

import logging

log = logging.getLogger("ponder.requests")
MAX_PROMPT_CHARS = 2000


def log_request(log_prompts: bool, request_id: str, tenant: str, plan, status: str, latency_ms: float,
                compute_units: float, prompt: str = "") -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    extra = f" prompt={prompt[:MAX_PROMPT_CHARS]!r}" if log_prompts and prompt else ""
    log.info("request %s tenant=%s pool=%s strategy=%s status=%s latency_ms=%.1f cu=%g%s", request_id, tenant,
             plan.pool if plan else "-", plan.strategy if plan else "-", status, latency_ms, compute_units, extra)
