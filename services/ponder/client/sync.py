"""The blocking client: the asyncio client run on a private event loop in a daemon thread."""
from __future__ import annotations

import asyncio
import threading
from typing import Iterator

from ponder.client.aio import AsyncClient
from ponder.client.types import Answer, Delta, PlanResult, Status


class Client:
    """Same arguments and methods as ``AsyncClient``, blocking; safe to share between threads."""

    def __init__(self, address: str | None = None, **kw):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ponder-client", daemon=True)
        self._thread.start()
        self._aio = self._run(self._make(address, kw))

    async def _make(self, address, kw) -> AsyncClient:
        return AsyncClient(address, **kw)

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @property
    def config(self):
        return self._aio.config

    def generate(self, prompt: str = "", **kw) -> Answer:
        return self._run(self._aio.generate(prompt, **kw))

    def plan(self, prompt: str = "", **kw) -> PlanResult:
        return self._run(self._aio.plan(prompt, **kw))

    def status(self, **kw) -> Status:
        return self._run(self._aio.status(**kw))

    def feedback(self, request_id: str, **kw) -> None:
        return self._run(self._aio.feedback(request_id, **kw))

    def stream(self, prompt: str = "", **kw) -> Iterator[Delta | Answer]:
        """Events as they come; leaving the loop early cancels the call."""
        agen = self._aio.stream(prompt, **kw)
        try:
            while True:
                try:
                    yield self._run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(agen.aclose())

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._aio.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
