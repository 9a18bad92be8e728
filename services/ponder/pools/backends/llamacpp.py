"""``llamacpp``: any GGUF on CPU through llama-cpp-python.

llama.cpp's context is not thread-safe, so one worker thread owns it and the
pool engine admits one request at a time. Tokens cross from that thread to
the event loop through a deque, waking the loop only when it waits, and leave
in chunks at most every ``stream_interval_ms``; closing the stream sets a flag
the thread checks between tokens, so cancellation stops generation within a token.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import os
import threading
from typing import AsyncIterator

from ponder.common.config import LlamaCppBackend
from ponder.common.errors import BackendError, DependencyMissing
from ponder.pools.backends.base import Backend, Delta, Done, GenParams, flatten_messages

_END = object()


def completion_kwargs(p: GenParams) -> dict:
    """llama-cpp-python create_completion arguments for GenParams (pure; unit-tested)."""
    kw = {
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "top_k": p.top_k,
        "stop": list(p.stop) or None,
        "stream": True,
    }
    if p.seed is not None:
        kw["seed"] = p.seed
    return kw


class LlamaCppEngine(Backend):
    kind = "llamacpp"
    max_concurrency = 1  # one context, one worker thread

    def __init__(self, cfg: LlamaCppBackend, model_path: str | None = None):
        self.cfg = cfg
        self._path = model_path or cfg.model_path
        self._llm = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llamacpp")

    @property
    def model(self) -> str:
        return os.path.basename(self._path) if self._path else "gemma-3-270m-q4_k_m.gguf (not loaded)"

    async def start(self) -> None:
        if self._llm is not None:
            return
        if self._path is None:
            from ponder.pools.models import ensure_default_gguf

            self._path = str(await asyncio.to_thread(ensure_default_gguf))
        if not os.path.exists(self._path):
            raise BackendError("llamacpp", f"model file {self._path!r} does not exist")
        try:
            from llama_cpp import Llama
        except ImportError:
            raise DependencyMissing("llama-cpp-python", "pip install 'ponder[cpu]'") from None
        loop = asyncio.get_running_loop()
        self._llm = await loop.run_in_executor(
            self._pool,
            lambda: Llama(
                model_path=self._path,
                n_ctx=self.cfg.n_ctx,
                n_threads=self.cfg.n_threads,
                n_batch=self.cfg.n_batch,
                chat_format=self.cfg.chat_format,
                verbose=False,
            ),
        )

    async def close(self) -> None:
        self._pool.shutdown(wait=True)
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode(), add_bos=True, special=True))

    async def stream(self, params: GenParams) -> AsyncIterator[Delta | Done]:
        if self._llm is None:
            await self.start()
        loop = asyncio.get_running_loop()
        # The decode thread appends to ``buf`` and wakes the event loop only when
        # the consumer is asleep: one wake-up per chunk, not per token.
        buf: collections.deque = collections.deque()
        ready = asyncio.Event()
        waiting = False
        stop = threading.Event()
        use_chat = bool(params.messages) and self.cfg.chat_format is not None
        prompt = params.prompt or flatten_messages(params.messages)

        def put(item) -> None:
            buf.append(item)
            if waiting:
                loop.call_soon_threadsafe(ready.set)

        def run() -> None:
            n, finish = 0, "stop"
            try:
                kw = completion_kwargs(params)
                if use_chat:
                    it = self._llm.create_chat_completion(
                        messages=[{"role": r, "content": c} for r, c in params.messages], **kw
                    )
                    prompt_tokens = 0
                else:
                    prompt_tokens = self.count_tokens(prompt)
                    it = self._llm.create_completion(prompt, **kw)
                for chunk in it:
                    if stop.is_set():
                        finish = "cancelled"
                        break
                    choice = chunk["choices"][0]
                    text = choice.get("text") if not use_chat else choice.get("delta", {}).get("content")
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
                    if (text is None and use_chat) or (not text and choice.get("finish_reason")):
                        continue  # role header or the closing chunk: not a token
                    n += 1
                    put(Delta(text or "", 1))
                close = getattr(it, "close", None)
                if close:
                    close()
                put(Done(prompt_tokens, n, finish))
            except BaseException as e:  # noqa: BLE001 - crosses the thread boundary
                put(e)
            finally:
                put(_END)

        async def take():
            nonlocal waiting
            while not buf:
                waiting = True
                if buf:  # appended before the flag was seen
                    waiting = False
                    break
                await ready.wait()
                ready.clear()
                waiting = False
            return buf.popleft()

        fut = loop.run_in_executor(self._pool, run)
        interval = self.cfg.stream_interval_ms / 1000
        next_flush = 0.0  # the first token goes out at once
        try:
            while True:
                item = await take()
                if isinstance(item, Delta) and interval:
                    # Coalesce: every chunk costs CPU in each process it crosses
                    # (replica, Serve proxy, router, client), CPU the decoder needs.
                    wait = next_flush - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    texts, tokens = [item.text], item.tokens
                    while buf and isinstance(buf[0], Delta):
                        d = buf.popleft()
                        texts.append(d.text)
                        tokens += d.tokens
                    item = Delta("".join(texts), tokens)
                    next_flush = loop.time() + interval
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise BackendError("llamacpp", str(item)) from item
                yield item
        finally:
            stop.set()
            await asyncio.shield(fut)
