"""``transformers``: a causal LM in PyTorch (CPU or GPU), fed tokens or input embeddings.

The model lives in one worker thread (``torch_lm.CausalLM`` is not
thread-safe), so the pool engine admits one request at a time. Tokens cross to
the event loop through an ``asyncio.Queue``; closing the stream sets a flag the
decode loop checks before each token, so cancellation stops it within a token.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import AsyncIterator

from ponder.common.config import TransformersBackend
from ponder.common.errors import BackendError, PonderError
from ponder.pools.backends.base import Backend, Delta, Done, GenParams, flatten_messages

_END = object()


class TransformersEngine(Backend):
    kind = "transformers"
    max_concurrency = 1
    accepts_embeddings = True

    def __init__(self, cfg: TransformersBackend):
        self.cfg = cfg
        self._path = cfg.model_path
        self.lm = None  # torch_lm.CausalLM once started
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="transformers")

    @property
    def model(self) -> str:
        return self.lm.name if self.lm is not None else self.cfg.model_label()

    async def start(self) -> None:
        if self.lm is not None:
            return
        from ponder.pools.backends.torch_lm import CausalLM

        if self._path is None:
            from ponder.pools.models import ensure_default_gguf

            self._path = str(await asyncio.to_thread(ensure_default_gguf))
        cfg = self.cfg
        self.lm = await asyncio.get_running_loop().run_in_executor(
            self.executor,
            lambda: CausalLM.load(self._path, cfg.device, cfg.dtype, cfg.max_context_tokens, cfg.num_threads),
        )

    async def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.lm = None

    def prompt_embeds(self, params: GenParams):
        """The embeddings generation starts from: ``params.prompt_embeds`` if given, else the prompt's tokens."""
        if params.prompt_embeds is not None:
            return params.prompt_embeds
        return self.lm.embed(self.lm.encode(params.prompt or flatten_messages(params.messages)))

    async def stream(self, params: GenParams) -> AsyncIterator[Delta | Done]:
        if self.lm is None:
            await self.start()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()

        def run() -> None:
            try:
                embeds = self.prompt_embeds(params)
                for item in self.lm.decode(
                    embeds, params.max_tokens, params.temperature, params.top_p, params.top_k,
                    params.seed, params.stop, stop.is_set,
                ):
                    loop.call_soon_threadsafe(queue.put_nowait, item)
            except BaseException as e:  # noqa: BLE001 - crosses the thread boundary
                loop.call_soon_threadsafe(queue.put_nowait, e)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        fut = loop.run_in_executor(self.executor, run)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, PonderError):
                    raise item
                if isinstance(item, BaseException):
                    raise BackendError("transformers", f"{type(item).__name__}: {item}") from item
                yield item
        finally:
            stop.set()
            await asyncio.shield(fut)
