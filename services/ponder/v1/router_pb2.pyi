from ponder.v1 import common_pb2 as _common_pb2
from ponder.v1 import pool_pb2 as _pool_pb2
from ponder.v1 import voting_pb2 as _voting_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerateRequest(_message.Message):
    __slots__ = ("prompt", "messages", "sampling", "budget", "context_id", "hints", "request_id", "labels", "task")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    HINTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChatMessage]
    sampling: _common_pb2.SamplingParams
    budget: _common_pb2.Budget
    context_id: str
    hints: _common_pb2.Hints
    request_id: str
    labels: _containers.ScalarMap[str, str]
    task: _voting_pb2.SolveRequest
    def __init__(self, prompt: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.ChatMessage, _Mapping]]] = ..., sampling: _Optional[_Union[_common_pb2.SamplingParams, _Mapping]] = ..., budget: _Optional[_Union[_common_pb2.Budget, _Mapping]] = ..., context_id: _Optional[str] = ..., hints: _Optional[_Union[_common_pb2.Hints, _Mapping]] = ..., request_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., task: _Optional[_Union[_voting_pb2.SolveRequest, _Mapping]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("request_id", "text", "plan", "usage", "finish_reason", "model", "simulated", "samples", "task_summary")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    TASK_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    text: str
    plan: _common_pb2.Plan
    usage: _common_pb2.Usage
    finish_reason: str
    model: str
    simulated: bool
    samples: _containers.RepeatedScalarFieldContainer[str]
    task_summary: _voting_pb2.SolveSummary
    def __init__(self, request_id: _Optional[str] = ..., text: _Optional[str] = ..., plan: _Optional[_Union[_common_pb2.Plan, _Mapping]] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., finish_reason: _Optional[str] = ..., model: _Optional[str] = ..., simulated: _Optional[bool] = ..., samples: _Optional[_Iterable[str]] = ..., task_summary: _Optional[_Union[_voting_pb2.SolveSummary, _Mapping]] = ...) -> None: ...

class GenerateEvent(_message.Message):
    __slots__ = ("delta", "final")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    delta: _common_pb2.TokenDelta
    final: GenerateResponse
    def __init__(self, delta: _Optional[_Union[_common_pb2.TokenDelta, _Mapping]] = ..., final: _Optional[_Union[GenerateResponse, _Mapping]] = ...) -> None: ...

class PlanResponse(_message.Message):
    __slots__ = ("request_id", "plan")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    plan: _common_pb2.Plan
    def __init__(self, request_id: _Optional[str] = ..., plan: _Optional[_Union[_common_pb2.Plan, _Mapping]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PoolStatus(_message.Message):
    __slots__ = ("name", "tier", "backend", "model", "address", "healthy", "error", "stats", "breaker")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    BREAKER_FIELD_NUMBER: _ClassVar[int]
    name: str
    tier: str
    backend: str
    model: str
    address: str
    healthy: bool
    error: str
    stats: _pool_pb2.PoolStats
    breaker: BreakerState
    def __init__(self, name: _Optional[str] = ..., tier: _Optional[str] = ..., backend: _Optional[str] = ..., model: _Optional[str] = ..., address: _Optional[str] = ..., healthy: _Optional[bool] = ..., error: _Optional[str] = ..., stats: _Optional[_Union[_pool_pb2.PoolStats, _Mapping]] = ..., breaker: _Optional[_Union[BreakerState, _Mapping]] = ...) -> None: ...

class BreakerState(_message.Message):
    __slots__ = ("state", "consecutive_failures", "since_unix_s", "retry_after_s", "opened_total")
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    SINCE_UNIX_S_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    OPENED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    state: str
    consecutive_failures: int
    since_unix_s: float
    retry_after_s: float
    opened_total: int
    def __init__(self, state: _Optional[str] = ..., consecutive_failures: _Optional[int] = ..., since_unix_s: _Optional[float] = ..., retry_after_s: _Optional[float] = ..., opened_total: _Optional[int] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("version", "policy", "pools", "outcome_log", "http")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_LOG_FIELD_NUMBER: _ClassVar[int]
    HTTP_FIELD_NUMBER: _ClassVar[int]
    version: str
    policy: str
    pools: _containers.RepeatedCompositeFieldContainer[PoolStatus]
    outcome_log: str
    http: HttpFront
    def __init__(self, version: _Optional[str] = ..., policy: _Optional[str] = ..., pools: _Optional[_Iterable[_Union[PoolStatus, _Mapping]]] = ..., outcome_log: _Optional[str] = ..., http: _Optional[_Union[HttpFront, _Mapping]] = ...) -> None: ...

class HttpFront(_message.Message):
    __slots__ = ("url",)
    URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    def __init__(self, url: _Optional[str] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("request_id", "correct", "score")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    correct: bool
    score: float
    def __init__(self, request_id: _Optional[str] = ..., correct: _Optional[bool] = ..., score: _Optional[float] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...
