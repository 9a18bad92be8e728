from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PutContextRequest(_message.Message):
    __slots__ = ("context_id", "text", "ttl_s", "tenant")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    text: str
    ttl_s: float
    tenant: str
    def __init__(self, context_id: _Optional[str] = ..., text: _Optional[str] = ..., ttl_s: _Optional[float] = ..., tenant: _Optional[str] = ...) -> None: ...

class ContextInfo(_message.Message):
    __slots__ = ("context_id", "version", "tenant", "chars", "tokens", "created_at", "expires_at")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CHARS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    version: str
    tenant: str
    chars: int
    tokens: int
    created_at: float
    expires_at: float
    def __init__(self, context_id: _Optional[str] = ..., version: _Optional[str] = ..., tenant: _Optional[str] = ..., chars: _Optional[int] = ..., tokens: _Optional[int] = ..., created_at: _Optional[float] = ..., expires_at: _Optional[float] = ...) -> None: ...

class ConsolidatedForm(_message.Message):
    __slots__ = ("text", "source_version", "strategy", "passes", "tokens", "model_tokens_in", "model_tokens_out", "compute_units", "uses", "amortised_compute_units", "created_at", "job_id")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    PASSES_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    MODEL_TOKENS_IN_FIELD_NUMBER: _ClassVar[int]
    MODEL_TOKENS_OUT_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_UNITS_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    AMORTISED_COMPUTE_UNITS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    text: str
    source_version: str
    strategy: str
    passes: int
    tokens: int
    model_tokens_in: int
    model_tokens_out: int
    compute_units: float
    uses: int
    amortised_compute_units: float
    created_at: float
    job_id: str
    def __init__(self, text: _Optional[str] = ..., source_version: _Optional[str] = ..., strategy: _Optional[str] = ..., passes: _Optional[int] = ..., tokens: _Optional[int] = ..., model_tokens_in: _Optional[int] = ..., model_tokens_out: _Optional[int] = ..., compute_units: _Optional[float] = ..., uses: _Optional[int] = ..., amortised_compute_units: _Optional[float] = ..., created_at: _Optional[float] = ..., job_id: _Optional[str] = ...) -> None: ...

class GetContextRequest(_message.Message):
    __slots__ = ("context_id", "include_text")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TEXT_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    include_text: bool
    def __init__(self, context_id: _Optional[str] = ..., include_text: _Optional[bool] = ...) -> None: ...

class GetContextResponse(_message.Message):
    __slots__ = ("info", "raw_text", "consolidated")
    INFO_FIELD_NUMBER: _ClassVar[int]
    RAW_TEXT_FIELD_NUMBER: _ClassVar[int]
    CONSOLIDATED_FIELD_NUMBER: _ClassVar[int]
    info: ContextInfo
    raw_text: str
    consolidated: ConsolidatedForm
    def __init__(self, info: _Optional[_Union[ContextInfo, _Mapping]] = ..., raw_text: _Optional[str] = ..., consolidated: _Optional[_Union[ConsolidatedForm, _Mapping]] = ...) -> None: ...

class DeleteContextRequest(_message.Message):
    __slots__ = ("context_id",)
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    def __init__(self, context_id: _Optional[str] = ...) -> None: ...

class DeleteContextResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class ConsolidateRequest(_message.Message):
    __slots__ = ("context_id", "strategy", "passes", "pool")
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    PASSES_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    context_id: str
    strategy: str
    passes: int
    pool: str
    def __init__(self, context_id: _Optional[str] = ..., strategy: _Optional[str] = ..., passes: _Optional[int] = ..., pool: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "context_id", "source_version", "strategy", "passes", "pool", "state", "steps_done", "steps_total", "attempts", "error", "compute_units", "model_tokens_in", "model_tokens_out", "created_at", "updated_at", "worker", "not_before")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    PASSES_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEPS_DONE_FIELD_NUMBER: _ClassVar[int]
    STEPS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_UNITS_FIELD_NUMBER: _ClassVar[int]
    MODEL_TOKENS_IN_FIELD_NUMBER: _ClassVar[int]
    MODEL_TOKENS_OUT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    context_id: str
    source_version: str
    strategy: str
    passes: int
    pool: str
    state: str
    steps_done: int
    steps_total: int
    attempts: int
    error: str
    compute_units: float
    model_tokens_in: int
    model_tokens_out: int
    created_at: float
    updated_at: float
    worker: str
    not_before: float
    def __init__(self, job_id: _Optional[str] = ..., context_id: _Optional[str] = ..., source_version: _Optional[str] = ..., strategy: _Optional[str] = ..., passes: _Optional[int] = ..., pool: _Optional[str] = ..., state: _Optional[str] = ..., steps_done: _Optional[int] = ..., steps_total: _Optional[int] = ..., attempts: _Optional[int] = ..., error: _Optional[str] = ..., compute_units: _Optional[float] = ..., model_tokens_in: _Optional[int] = ..., model_tokens_out: _Optional[int] = ..., created_at: _Optional[float] = ..., updated_at: _Optional[float] = ..., worker: _Optional[str] = ..., not_before: _Optional[float] = ...) -> None: ...

class JobsRequest(_message.Message):
    __slots__ = ("job_id", "context_id", "limit")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    context_id: str
    limit: int
    def __init__(self, job_id: _Optional[str] = ..., context_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class JobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class ConsolidatorStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PoolIdleState(_message.Message):
    __slots__ = ("pool", "idle", "queue_depth", "running", "reason")
    POOL_FIELD_NUMBER: _ClassVar[int]
    IDLE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    pool: str
    idle: bool
    queue_depth: int
    running: int
    reason: str
    def __init__(self, pool: _Optional[str] = ..., idle: _Optional[bool] = ..., queue_depth: _Optional[int] = ..., running: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ConsolidatorStatus(_message.Message):
    __slots__ = ("contexts", "jobs_pending", "strategies", "pools", "policies", "worker")
    CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    JOBS_PENDING_FIELD_NUMBER: _ClassVar[int]
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    contexts: int
    jobs_pending: int
    strategies: _containers.RepeatedScalarFieldContainer[str]
    pools: _containers.RepeatedCompositeFieldContainer[PoolIdleState]
    policies: _containers.RepeatedScalarFieldContainer[str]
    worker: str
    def __init__(self, contexts: _Optional[int] = ..., jobs_pending: _Optional[int] = ..., strategies: _Optional[_Iterable[str]] = ..., pools: _Optional[_Iterable[_Union[PoolIdleState, _Mapping]]] = ..., policies: _Optional[_Iterable[str]] = ..., worker: _Optional[str] = ...) -> None: ...
