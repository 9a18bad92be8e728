"""Stored contexts by id (Redis): the raw text, and the consolidated form when one exists.

Keys: ``ponder:context:{id}`` holds the raw context, ``ponder:context:{id}:consolidated``
the consolidated one; the router prefers the consolidated form. ``resolve`` is
the one call the router makes before planning.
"""
from __future__ import annotations

import dataclasses
import hashlib

from ponder.common.errors import NotFound
from ponder.router.catalog import estimate_tokens

PREFIX = "ponder:context:"


class ContextNotFound(NotFound):
    def __init__(self, context_id: str):
        self.context_id = context_id
        super().__init__(f"context_id: no stored context {context_id!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedContext:
    """The context a request will send, and what it would have cost raw."""

    context_id: str
    text: str  # what is sent
    consolidated: bool
    source_version: str  # hash of the raw source text
    raw_tokens: int
    sent_tokens: int
    consolidation_cu: float = 0.0  # the consolidation's own cost
    uses: int = 1  # queries that used this consolidated form so far (amortisation)


def source_version(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ContextStore:
    def __init__(self, redis_client):
        self.redis = redis_client

    async def put(self, context_id: str, text: str) -> None:
        await self.redis.set(PREFIX + context_id, text.encode())

    async def get(self, context_id: str) -> tuple[str, bool]:
        """(text, consolidated?) for a context id; ContextNotFound when neither exists."""
        r = await self.resolve(context_id)
        return r.text, r.consolidated

    async def resolve(self, context_id: str) -> ResolvedContext:
        """The form to send (consolidated when stored, else raw); ContextNotFound when neither exists."""
        consolidated, raw = await self.redis.mget(PREFIX + context_id + ":consolidated", PREFIX + context_id)
        if consolidated is None and raw is None:
            raise ContextNotFound(context_id)
        raw_text = raw.decode() if raw is not None else None
        sent = consolidated.decode() if consolidated is not None else raw_text
        raw_tokens = estimate_tokens(len(raw_text)) if raw_text is not None else estimate_tokens(len(sent))
        return ResolvedContext(
            context_id=context_id, text=sent, consolidated=consolidated is not None,
            source_version=source_version(raw_text if raw_text is not None else sent),
            raw_tokens=raw_tokens, sent_tokens=estimate_tokens(len(sent)),
        )
