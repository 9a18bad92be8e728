from ponder.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PoolGenerateRequest(_message.Message):
    __slots__ = ("request_id", "prompt", "messages", "sampling", "thinking_budget", "soft_thoughts")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    THINKING_BUDGET_FIELD_NUMBER: _ClassVar[int]
    SOFT_THOUGHTS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    prompt: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChatMessage]
    sampling: _common_pb2.SamplingParams
    thinking_budget: int
    soft_thoughts: bool
    def __init__(self, request_id: _Optional[str] = ..., prompt: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.ChatMessage, _Mapping]]] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., thinking_budget: _Optional[int] = ..., soft_thoughts: _Optional[bool] = ...) -> None: ...

class PoolGenerateResponse(_message.Message):
    __slots__ = ("text", "thinking", "finish_reason", "prompt_tokens", "output_tokens", "thinking_tokens", "latency_ms", "time_to_first_token_ms", "model", "simulated", "soft_thought_tokens", "assistant_tokens", "assistant_ms", "assistant_cu")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    THINKING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    SOFT_THOUGHT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_MS_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_CU_FIELD_NUMBER: _ClassVar[int]
    text: str
    thinking: str
    finish_reason: str
    prompt_tokens: int
    output_tokens: int
    thinking_tokens: int
    latency_ms: float
    time_to_first_token_ms: float
    model: str
    simulated: bool
    soft_thought_tokens: int
    assistant_tokens: int
    assistant_ms: float
    assistant_cu: float
    def __init__(self, text: _Optional[str] = ..., thinking: _Optional[str] = ..., finish_reason: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., thinking_tokens: _Optional[int] = ..., latency_ms: _Optional[float] = ..., time_to_first_token_ms: _Optional[float] = ..., model: _Optional[str] = ..., simulated: _Optional[bool] = ..., soft_thought_tokens: _Optional[int] = ..., assistant_tokens: _Optional[int] = ..., assistant_ms: _Optional[float] = ..., assistant_cu: _Optional[float] = ...) -> None: ...

class PoolGenerateChunk(_message.Message):
    __slots__ = ("delta", "final")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    delta: _common_pb2.TokenDelta
    final: PoolGenerateResponse
    def __init__(self, delta: _Optional[_Union[_common_pb2.TokenDelta, _Mapping]] = ..., final: _Optional[_Union[PoolGenerateResponse, _Mapping]] = ...) -> None: ...

class PoolStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PoolStats(_message.Message):
    __slots__ = ("pool", "backend", "model", "simulated", "queue_depth", "running", "tokens_per_s", "requests_total", "output_tokens_total", "replica", "load_error")
    POOL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_S_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    LOAD_ERROR_FIELD_NUMBER: _ClassVar[int]
    pool: str
    backend: str
    model: str
    simulated: bool
    queue_depth: int
    running: int
    tokens_per_s: float
    requests_total: int
    output_tokens_total: int
    replica: str
    load_error: str
    def __init__(self, pool: _Optional[str] = ..., backend: _Optional[str] = ..., model: _Optional[str] = ..., simulated: _Optional[bool] = ..., queue_depth: _Optional[int] = ..., running: _Optional[int] = ..., tokens_per_s: _Optional[float] = ..., requests_total: _Optional[int] = ..., output_tokens_total: _Optional[int] = ..., replica: _Optional[str] = ..., load_error: _Optional[str] = ...) -> None: ...
