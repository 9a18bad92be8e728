from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HanoiParams(_message.Message):
    __slots__ = ("disks",)
    DISKS_FIELD_NUMBER: _ClassVar[int]
    disks: int
    def __init__(self, disks: _Optional[int] = ...) -> None: ...

class AdditionParams(_message.Message):
    __slots__ = ("digits", "a", "b", "decomposition", "vary_prompts")
    DIGITS_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    DECOMPOSITION_FIELD_NUMBER: _ClassVar[int]
    VARY_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    digits: int
    a: str
    b: str
    decomposition: str
    vary_prompts: bool
    def __init__(self, digits: _Optional[int] = ..., a: _Optional[str] = ..., b: _Optional[str] = ..., decomposition: _Optional[str] = ..., vary_prompts: _Optional[bool] = ...) -> None: ...

class VotingParams(_message.Message):
    __slots__ = ("k", "target_success", "p", "calibration_steps", "calibration_samples_per_step", "max_samples_per_step", "max_output_tokens", "retries", "max_steps", "calibration_confidence")
    K_FIELD_NUMBER: _ClassVar[int]
    TARGET_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    P_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_STEPS_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_SAMPLES_PER_STEP_FIELD_NUMBER: _ClassVar[int]
    MAX_SAMPLES_PER_STEP_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    k: int
    target_success: float
    p: float
    calibration_steps: int
    calibration_samples_per_step: int
    max_samples_per_step: int
    max_output_tokens: int
    retries: int
    max_steps: int
    calibration_confidence: float
    def __init__(self, k: _Optional[int] = ..., target_success: _Optional[float] = ..., p: _Optional[float] = ..., calibration_steps: _Optional[int] = ..., calibration_samples_per_step: _Optional[int] = ..., max_samples_per_step: _Optional[int] = ..., max_output_tokens: _Optional[int] = ..., retries: _Optional[int] = ..., max_steps: _Optional[int] = ..., calibration_confidence: _Optional[float] = ...) -> None: ...

class SolveRequest(_message.Message):
    __slots__ = ("request_id", "task", "hanoi", "addition", "voting", "sampler", "seed")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    HANOI_FIELD_NUMBER: _ClassVar[int]
    ADDITION_FIELD_NUMBER: _ClassVar[int]
    VOTING_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    task: str
    hanoi: HanoiParams
    addition: AdditionParams
    voting: VotingParams
    sampler: str
    seed: int
    def __init__(self, request_id: _Optional[str] = ..., task: _Optional[str] = ..., hanoi: _Optional[_Union[HanoiParams, _Mapping]] = ..., addition: _Optional[_Union[AdditionParams, _Mapping]] = ..., voting: _Optional[_Union[VotingParams, _Mapping]] = ..., sampler: _Optional[str] = ..., seed: _Optional[int] = ...) -> None: ...

class Vote(_message.Message):
    __slots__ = ("answer", "votes")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    answer: str
    votes: int
    def __init__(self, answer: _Optional[str] = ..., votes: _Optional[int] = ...) -> None: ...

class StepEvent(_message.Message):
    __slots__ = ("index", "winner", "votes", "red_flags", "samples", "compute_units", "latency_ms")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    RED_FLAGS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_UNITS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    index: int
    winner: str
    votes: _containers.RepeatedCompositeFieldContainer[Vote]
    red_flags: int
    samples: int
    compute_units: float
    latency_ms: float
    def __init__(self, index: _Optional[int] = ..., winner: _Optional[str] = ..., votes: _Optional[_Iterable[_Union[Vote, _Mapping]]] = ..., red_flags: _Optional[int] = ..., samples: _Optional[int] = ..., compute_units: _Optional[float] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class SolveSummary(_message.Message):
    __slots__ = ("request_id", "task", "sampler", "simulated", "k", "p", "expected_success", "steps_total", "steps_completed", "total_samples", "red_flags", "calibration_samples", "compute_units", "wall_time_ms", "success", "correct", "answer", "progress", "failed_step", "error", "p_estimate", "p_lower_bound", "calibration_valid", "calibration_correct", "calibration_confidence")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    P_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    STEPS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    STEPS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    RED_FLAGS_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_UNITS_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    FAILED_STEP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    P_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    P_LOWER_BOUND_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_VALID_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_CORRECT_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    task: str
    sampler: str
    simulated: bool
    k: int
    p: float
    expected_success: float
    steps_total: int
    steps_completed: int
    total_samples: int
    red_flags: int
    calibration_samples: int
    compute_units: float
    wall_time_ms: float
    success: bool
    correct: bool
    answer: str
    progress: str
    failed_step: int
    error: str
    p_estimate: float
    p_lower_bound: float
    calibration_valid: int
    calibration_correct: int
    calibration_confidence: float
    def __init__(self, request_id: _Optional[str] = ..., task: _Optional[str] = ..., sampler: _Optional[str] = ..., simulated: _Optional[bool] = ..., k: _Optional[int] = ..., p: _Optional[float] = ..., expected_success: _Optional[float] = ..., steps_total: _Optional[int] = ..., steps_completed: _Optional[int] = ..., total_samples: _Optional[int] = ..., red_flags: _Optional[int] = ..., calibration_samples: _Optional[int] = ..., compute_units: _Optional[float] = ..., wall_time_ms: _Optional[float] = ..., success: _Optional[bool] = ..., correct: _Optional[bool] = ..., answer: _Optional[str] = ..., progress: _Optional[str] = ..., failed_step: _Optional[int] = ..., error: _Optional[str] = ..., p_estimate: _Optional[float] = ..., p_lower_bound: _Optional[float] = ..., calibration_valid: _Optional[int] = ..., calibration_correct: _Optional[int] = ..., calibration_confidence: _Optional[float] = ...) -> None: ...

class SolveEvent(_message.Message):
    __slots__ = ("step", "summary")
    STEP_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    step: StepEvent
    summary: SolveSummary
    def __init__(self, step: _Optional[_Union[StepEvent, _Mapping]] = ..., summary: _Optional[_Union[SolveSummary, _Mapping]] = ...) -> None: ...
