from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChatMessage(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class SamplingParams(_message.Message):
    __slots__ = ("max_tokens", "temperature", "top_p", "top_k", "stop", "seed")
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    stop: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    def __init__(self, max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., top_k: _Optional[int] = ..., stop: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("max_compute_units", "max_latency_ms")
    MAX_COMPUTE_UNITS_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    max_compute_units: float
    max_latency_ms: float
    def __init__(self, max_compute_units: _Optional[float] = ..., max_latency_ms: _Optional[float] = ...) -> None: ...

class Hints(_message.Message):
    __slots__ = ("pool", "strategy", "samples", "thinking_budget")
    POOL_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    THINKING_BUDGET_FIELD_NUMBER: _ClassVar[int]
    pool: str
    strategy: str
    samples: int
    thinking_budget: int
    def __init__(self, pool: _Optional[str] = ..., strategy: _Optional[str] = ..., samples: _Optional[int] = ..., thinking_budget: _Optional[int] = ...) -> None: ...

class PlanCandidate(_message.Message):
    __slots__ = ("pool", "strategy", "samples", "thinking_budget", "expected_accuracy", "expected_compute_units", "expected_latency_ms", "score", "feasible", "note", "clamped")
    POOL_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    THINKING_BUDGET_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_COMPUTE_UNITS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FEASIBLE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CLAMPED_FIELD_NUMBER: _ClassVar[int]
    pool: str
    strategy: str
    samples: int
    thinking_budget: int
    expected_accuracy: float
    expected_compute_units: float
    expected_latency_ms: float
    score: float
    feasible: bool
    note: str
    clamped: str
    def __init__(self, pool: _Optional[str] = ..., strategy: _Optional[str] = ..., samples: _Optional[int] = ..., thinking_budget: _Optional[int] = ..., expected_accuracy: _Optional[float] = ..., expected_compute_units: _Optional[float] = ..., expected_latency_ms: _Optional[float] = ..., score: _Optional[float] = ..., feasible: _Optional[bool] = ..., note: _Optional[str] = ..., clamped: _Optional[str] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("pool", "strategy", "samples", "thinking_budget", "expected_compute_units", "expected_latency_ms", "policy", "reason", "candidates", "context_id", "expected_accuracy", "clamped")
    POOL_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    THINKING_BUDGET_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_COMPUTE_UNITS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CLAMPED_FIELD_NUMBER: _ClassVar[int]
    pool: str
    strategy: str
    samples: int
    thinking_budget: int
    expected_compute_units: float
    expected_latency_ms: float
    policy: str
    reason: str
    candidates: _containers.RepeatedCompositeFieldContainer[PlanCandidate]
    context_id: str
    expected_accuracy: float
    clamped: str
    def __init__(self, pool: _Optional[str] = ..., strategy: _Optional[str] = ..., samples: _Optional[int] = ..., thinking_budget: _Optional[int] = ..., expected_compute_units: _Optional[float] = ..., expected_latency_ms: _Optional[float] = ..., policy: _Optional[str] = ..., reason: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[PlanCandidate, _Mapping]]] = ..., context_id: _Optional[str] = ..., expected_accuracy: _Optional[float] = ..., clamped: _Optional[str] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "output_tokens", "thinking_tokens", "compute_units", "latency_ms", "time_to_first_token_ms", "samples", "context_tokens_raw", "context_tokens_sent", "consolidation_saved_cu")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    THINKING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_UNITS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TOKENS_RAW_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TOKENS_SENT_FIELD_NUMBER: _ClassVar[int]
    CONSOLIDATION_SAVED_CU_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    output_tokens: int
    thinking_tokens: int
    compute_units: float
    latency_ms: float
    time_to_first_token_ms: float
    samples: int
    context_tokens_raw: int
    context_tokens_sent: int
    consolidation_saved_cu: float
    def __init__(self, prompt_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., thinking_tokens: _Optional[int] = ..., compute_units: _Optional[float] = ..., latency_ms: _Optional[float] = ..., time_to_first_token_ms: _Optional[float] = ..., samples: _Optional[int] = ..., context_tokens_raw: _Optional[int] = ..., context_tokens_sent: _Optional[int] = ..., consolidation_saved_cu: _Optional[float] = ...) -> None: ...

class TokenDelta(_message.Message):
    __slots__ = ("text", "sample_index", "thinking")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    text: str
    sample_index: int
    thinking: bool
    def __init__(self, text: _Optional[str] = ..., sample_index: _Optional[int] = ..., thinking: _Optional[bool] = ...) -> None: ...
