"""``vllm``: the production GPU backend, vLLM's ``AsyncLLMEngine`` in this process.

vLLM is imported only in ``start()``, so CPU installs never need it. The
engine streams cumulative ``RequestOutput`` snapshots; each Delta is the text
added since the previous snapshot, token counts come from the snapshots'
``token_ids``. Closing the stream before the engine finishes aborts the
request, so its KV-cache blocks are freed at once.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any, AsyncIterator, Callable

from ponder.common.config import VLLMBackend
from ponder.common.errors import BackendError, ConfigError, DependencyMissing, PonderError
from ponder.common.telemetry import trace_headers
from ponder.pools.backends.base import Backend, Delta, Done, GenParams, flatten_messages

log = logging.getLogger(__name__)


def engine_args_kwargs(cfg: VLLMBackend) -> dict[str, Any]:
    """``AsyncEngineArgs`` keyword arguments for the config (pure; unit-tested).

    ``extra_engine_args`` adds arguments the typed fields do not cover;
    repeating a typed field there is a ConfigError, so no value silently wins.
    """
    kw: dict[str, Any] = {
        "model": cfg.model,
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "gpu_memory_utilization": cfg.gpu_memory_utilization,
        "dtype": cfg.dtype,
        "enforce_eager": cfg.enforce_eager,
    }
    if cfg.max_model_len is not None:
        kw["max_model_len"] = cfg.max_model_len
    repeated = sorted(set(cfg.extra_engine_args) & (set(kw) | {"max_model_len"}))
    if repeated:
        raise ConfigError(
            "vllm backend",
            [(f"extra_engine_args.{name}", f"set it with the typed field {name!r} instead") for name in repeated],
        )
    kw.update(cfg.extra_engine_args)
    return kw


def sampling_kwargs(params: GenParams) -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments for GenParams (pure; unit-tested).

    vLLM reads ``top_k=-1`` as disabled, so 0 or less maps to -1.
    """
    return {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else -1,
        "stop": list(params.stop),
        "seed": params.seed,
    }


def engine_prompt(params: GenParams) -> Any:
    """What ``generate`` is given: the prompt text, or ``{"prompt_embeds": tensor[seq, hidden]}``
    when the caller supplies input embeddings (SoftCoT). The embeddings path needs
    ``extra_engine_args: {enable_prompt_embeds: true}`` (vLLM V1, about 0.11 on), and
    prefix caching off when token and embedding prompts mix."""
    if params.prompt_embeds is not None:
        return {"prompt_embeds": params.prompt_embeds}
    return params.prompt or flatten_messages(params.messages)


class VLLMEngine(Backend):
    kind = "vllm"
    accepts_embeddings = True

    def __init__(
        self,
        cfg: VLLMBackend,
        engine: Any | None = None,
        sampling_params: Callable[..., Any] | None = None,
    ):
        """``engine`` and ``sampling_params`` replace vLLM's engine and SamplingParams (tests)."""
        self.cfg = cfg
        self._engine = engine
        self._sampling_params = sampling_params

    @property
    def model(self) -> str:
        return self.cfg.model

    async def start(self) -> None:
        """Build the engine. Loading weights blocks the event loop: vLLM's engine
        wants to be built on the loop it will serve, and start() runs before any request."""
        if self._engine is not None:
            return
        try:
            from vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams
        except ImportError:
            raise DependencyMissing("vllm", "pip install 'ponder[gpu]'") from None
        args = AsyncEngineArgs(**engine_args_kwargs(self.cfg))
        try:
            self._engine = AsyncLLMEngine.from_engine_args(args)
        except Exception as e:  # noqa: BLE001 - vLLM raises many types; all mean the engine did not start
            raise BackendError("vllm", f"engine for {self.cfg.model!r} did not start: {type(e).__name__}: {e}") from e
        self._sampling_params = self._sampling_params or SamplingParams

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is None:
            return
        shutdown = getattr(engine, "shutdown", None) or getattr(engine, "shutdown_background_loop", None)
        if shutdown is not None:
            shutdown()

    async def stream(self, params: GenParams) -> AsyncIterator[Delta | Done]:
        if self._engine is None:
            await self.start()
        # The pool may reuse one request_id across phases; vLLM needs each live id unique.
        request_id = f"{params.request_id or 'ponder'}-{uuid.uuid4().hex[:12]}"
        sampling = self._sampling_params(**sampling_kwargs(params))
        prompt = engine_prompt(params)
        sent = ""
        prompt_tokens = output_tokens = pending = 0
        finish = "stop"
        finished = False
        try:
            # vLLM continues the pool's trace in its own spans when its OTLP tracing is on.
            async for result in self._engine.generate(prompt, sampling, request_id, trace_headers=trace_headers() or None):
                out = result.outputs[0]
                prompt_tokens = len(result.prompt_token_ids or ()) or _embeds_len(params)
                n = len(out.token_ids)
                pending += n - output_tokens
                output_tokens = n
                if out.finish_reason:
                    finish = out.finish_reason
                finished = bool(result.finished)
                if len(out.text) > len(sent):
                    piece, sent = out.text[len(sent):], out.text
                    yield Delta(piece, pending)
                    pending = 0
        except PonderError:
            raise
        except Exception as e:  # noqa: BLE001 - engine errors of any type become BackendError
            raise BackendError("vllm", f"{type(e).__name__}: {e}") from e
        finally:
            if not finished:
                await self._abort(request_id)
        yield Done(prompt_tokens, output_tokens, finish)

    async def _abort(self, request_id: str) -> None:
        try:
            await self._engine.abort(request_id)
        except Exception:  # noqa: BLE001 - the request is already gone; the caller's error matters more
            log.warning("vllm abort(%s) failed", request_id, exc_info=True)


def _embeds_len(params: GenParams) -> int:
    return int(params.prompt_embeds.shape[0]) if params.prompt_embeds is not None else 0
