"""vllm backend without vLLM: argument mapping, and the stream against a scripted engine."""
from __future__ import annotations

import asyncio
import dataclasses
import sys

import pytest

from ponder.common.config import VLLMBackend
from ponder.common.errors import BackendError, ConfigError, DependencyMissing
from ponder.pools.backends import make_backend
from ponder.pools.backends.base import Delta, Done, GenParams
from ponder.pools.backends.vllm import VLLMEngine, engine_args_kwargs, sampling_kwargs


# ---------------------------------------------------------------- argument mapping
def test_engine_args_from_typed_fields():
    cfg = VLLMBackend(model="Qwen/Qwen2.5-0.5B-Instruct", tensor_parallel_size=2, gpu_memory_utilization=0.5,
                      dtype="bfloat16", enforce_eager=True)
    assert engine_args_kwargs(cfg) == {
        "model": "Qwen/Qwen2.5-0.5B-Instruct",
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.5,
        "dtype": "bfloat16",
        "enforce_eager": True,
    }


def test_engine_args_add_max_model_len_and_extras():
    cfg = VLLMBackend(model="m", max_model_len=4096, extra_engine_args={"enable_prefix_caching": True, "seed": 3})
    kw = engine_args_kwargs(cfg)
    assert kw["max_model_len"] == 4096
    assert kw["enable_prefix_caching"] is True and kw["seed"] == 3


@pytest.mark.parametrize("name", ["model", "dtype", "max_model_len"])
def test_extra_engine_args_may_not_repeat_a_typed_field(name):
    cfg = VLLMBackend(model="m", extra_engine_args={name: "x"})
    with pytest.raises(ConfigError) as err:
        engine_args_kwargs(cfg)
    assert err.value.problems[0][0] == f"extra_engine_args.{name}"


def test_sampling_kwargs_map_every_field():
    p = GenParams(prompt="p", max_tokens=12, temperature=0.0, top_p=0.9, top_k=50, stop=("###",), seed=11)
    assert sampling_kwargs(p) == {
        "max_tokens": 12, "temperature": 0.0, "top_p": 0.9, "top_k": 50, "stop": ["###"], "seed": 11,
    }


@pytest.mark.parametrize("top_k", [0, -5])
def test_sampling_kwargs_disable_top_k_the_vllm_way(top_k):
    kw = sampling_kwargs(GenParams(prompt="p", max_tokens=1, top_k=top_k))
    assert kw["top_k"] == -1
    assert kw["stop"] == [] and kw["seed"] is None


# ---------------------------------------------------------------- scripted engine
@dataclasses.dataclass
class Out:
    text: str
    token_ids: list[int]
    finish_reason: str | None = None


@dataclasses.dataclass
class Result:
    prompt_token_ids: list[int]
    outputs: list[Out]
    finished: bool = False


class ScriptedEngine:
    """Mimics AsyncLLMEngine: yields cumulative snapshots, records prompts and aborts."""

    def __init__(self, snapshots: list[tuple[str, int, str | None]], prompt_tokens: int = 5, fail_at: int = -1):
        self.snapshots = snapshots
        self.prompt_tokens = prompt_tokens
        self.fail_at = fail_at
        self.calls: list[tuple[str, dict, str]] = []
        self.aborted: list[str] = []
        self.shut_down = False

    async def generate(self, prompt, sampling, request_id, trace_headers=None):
        self.calls.append((prompt, sampling, request_id))
        self.trace_headers = trace_headers
        for i, (text, n, finish) in enumerate(self.snapshots):
            if i == self.fail_at:
                raise RuntimeError("CUDA error: out of memory")
            await asyncio.sleep(0)
            yield Result(list(range(self.prompt_tokens)), [Out(text, list(range(n)), finish)], finish is not None)

    async def abort(self, request_id):
        self.aborted.append(request_id)

    def shutdown(self):
        self.shut_down = True


def engine_with(engine: ScriptedEngine) -> VLLMEngine:
    return VLLMEngine(VLLMBackend(model="m"), engine=engine, sampling_params=dict)


async def collect(b: VLLMEngine, p: GenParams) -> list:
    return [item async for item in b.stream(p)]


async def test_stream_emits_new_text_and_counts_tokens():
    eng = ScriptedEngine([("Hel", 1, None), ("Hello", 2, None), ("Hello", 3, None), ("Hello world", 4, "length")])
    items = await collect(engine_with(eng), GenParams(prompt="Say", max_tokens=4, top_k=0, request_id="abc"))
    # The third snapshot adds a token but no text yet; its token rides on the next delta.
    assert items == [Delta("Hel", 1), Delta("lo", 1), Delta(" world", 2), Done(5, 4, "length")]
    prompt, sampling, rid = eng.calls[0]
    assert prompt == "Say"
    assert sampling["top_k"] == -1 and sampling["max_tokens"] == 4
    assert rid.startswith("abc-")
    assert eng.aborted == []


async def test_request_ids_are_unique_per_call():
    eng = ScriptedEngine([("a", 1, "stop")])
    b = engine_with(eng)
    p = GenParams(prompt="x", max_tokens=1, request_id="same")
    await collect(b, p)
    await collect(b, p)
    assert eng.calls[0][2] != eng.calls[1][2]


async def test_the_pools_trace_context_goes_to_the_engine():
    from ponder.common.telemetry import Tracing

    eng = ScriptedEngine([("a", 1, "stop")])
    b = engine_with(eng)
    await collect(b, GenParams(prompt="x", max_tokens=1))
    assert eng.trace_headers is None
    with Tracing("test").tracer.start_as_current_span("pool.generate") as span:
        await collect(b, GenParams(prompt="x", max_tokens=1))
    assert eng.trace_headers["traceparent"].split("-")[1] == format(span.get_span_context().trace_id, "032x")


async def test_messages_are_flattened_into_the_prompt():
    eng = ScriptedEngine([("ok", 1, "stop")])
    await collect(engine_with(eng), GenParams(prompt="", max_tokens=2, messages=(("user", "Hi"),)))
    assert eng.calls[0][0] == "User: Hi\nAssistant:"


async def test_closing_the_stream_aborts_the_request():
    eng = ScriptedEngine([("a", 1, None), ("ab", 2, None), ("abc", 3, "length")])
    gen = engine_with(eng).stream(GenParams(prompt="x", max_tokens=3))
    assert await anext(gen) == Delta("a", 1)
    await gen.aclose()
    assert eng.aborted == [eng.calls[0][2]]


async def test_engine_failure_becomes_backend_error_and_aborts():
    eng = ScriptedEngine([("a", 1, None), ("ab", 2, None)], fail_at=1)
    with pytest.raises(BackendError, match="CUDA error: out of memory"):
        await collect(engine_with(eng), GenParams(prompt="x", max_tokens=3))
    assert len(eng.aborted) == 1


async def test_close_shuts_the_engine_down():
    eng = ScriptedEngine([])
    b = engine_with(eng)
    await b.close()
    assert eng.shut_down


async def test_start_without_vllm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    b = make_backend(VLLMBackend(model="m"))
    assert isinstance(b, VLLMEngine) and b.kind == "vllm" and b.model == "m"
    with pytest.raises(DependencyMissing) as err:
        await b.start()
    assert err.value.what == "vllm"
    assert "ponder[gpu]" in err.value.how


# ---------------------------------------------------------------- SoftCoT prompt embeddings
async def test_prompt_embeds_reach_the_engine_as_the_prompt_embeds_input():
    """SoftCoT's path without a GPU: the engine gets ``{"prompt_embeds": tensor[seq, hidden]}`` in
    place of text, and prompt usage counts the embedding rows when vLLM reports no token ids."""
    torch = pytest.importorskip("torch")
    from ponder.pools.backends.vllm import engine_prompt

    embeds = torch.randn(9, 640)
    assert engine_prompt(GenParams(prompt="hi", max_tokens=4)) == "hi"
    req = engine_prompt(GenParams(prompt="hi", max_tokens=4, prompt_embeds=embeds))
    assert set(req) == {"prompt_embeds"} and req["prompt_embeds"] is embeds
    eng = ScriptedEngine([("4", 1, "stop")], prompt_tokens=0)
    items = await collect(engine_with(eng), GenParams(prompt="hi", max_tokens=4, prompt_embeds=embeds))
    prompt, sampling, _ = eng.calls[0]
    assert tuple(prompt["prompt_embeds"].shape) == (9, 640) and sampling["max_tokens"] == 4
    assert items[-1] == Done(9, 1, "stop")
    assert engine_with(eng).accepts_embeddings
