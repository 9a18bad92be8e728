"""Stored contexts by id (Redis): the raw text, and the consolidated form when one exists.

Keys: ``ponder:context:{id}`` holds the raw context, ``ponder:context:{id}:consolidated``
the consolidated one; the router prefers the consolidated form.
"""
from __future__ import annotations

from ponder.common.errors import PonderError

import grpc

PREFIX = "ponder:context:"


class ContextNotFound(PonderError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, context_id: str):
        self.context_id = context_id
        super().__init__(f"context_id: no stored context {context_id!r}")


class ContextStore:
    def __init__(self, redis_client):
        self.redis = redis_client

    async def put(self, context_id: str, text: str) -> None:
        await self.redis.set(PREFIX + context_id, text.encode())

    async def get(self, context_id: str) -> tuple[str, bool]:
        """(text, consolidated?) for a context id; ContextNotFound when neither exists."""
        consolidated, raw = await self.redis.mget(PREFIX + context_id + ":consolidated", PREFIX + context_id)
        if consolidated is not None:
            return consolidated.decode(), True
        if raw is not None:
            return raw.decode(), False
        raise ContextNotFound(context_id)
