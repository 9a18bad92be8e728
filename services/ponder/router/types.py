"""Router domain types: what the servicer hands to policies and strategies."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(slots=True)
class Sampling:
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclasses.dataclass(slots=True)
class Request:
    """A validated generation request."""

    request_id: str
    prompt: str
    messages: tuple[tuple[str, str], ...] = ()
    sampling: Sampling = dataclasses.field(default_factory=Sampling)
    max_compute_units: float | None = None
    max_latency_ms: float | None = None
    context_id: str = ""
    hint_pool: str = ""
    hint_strategy: str = ""
    hint_samples: int | None = None
    hint_thinking_budget: int | None = None
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    # A decomposed task for the voting workers (a ponder.v1.SolveRequest), or None.
    task: object | None = None
    # The stored context prepended to the prompt (a ``contexts.ResolvedContext``), once resolved.
    context: object | None = None
    # Estimated prompt tokens, set once the request is final (context included); planning reads it.
    prompt_tokens: int = 0
    # What the tenant's compute quota leaves (a ``quotas.QuotaLeft``), or None when unlimited.
    quota: object | None = None

    @property
    def text(self) -> str:
        """All the text the model will read: the prompt or the chat turns."""
        if self.prompt:
            return self.prompt
        return "\n".join(c for _, c in self.messages)

    @property
    def query(self) -> str:
        """What is asked: the prompt, or the last user turn of a chat (all turns when none is a user's)."""
        if self.prompt:
            return self.prompt
        users = [c for role, c in self.messages if role == "user"]
        return users[-1] if users else self.text


@dataclasses.dataclass(slots=True)
class Candidate:
    pool: str
    strategy: str
    samples: int = 1
    thinking_budget: int = 0
    expected_accuracy: float = 0.0
    expected_compute_units: float = 0.0
    expected_latency_ms: float = 0.0
    score: float = 0.0
    feasible: bool = True
    note: str = ""
    # What this candidate reduces from what the request asked ("hints.samples 5 -> 3"); "" when nothing.
    clamped: str = ""
    # A cascade's escalation pool and the compute units of its call there ("" / 0 for other strategies).
    escalate_to: str = ""
    escalate_cu: float = 0.0
    # A cascade's escalation threshold set while the policy scores it (from λ); None: the strategy's own.
    escalate_below: float | None = None


@dataclasses.dataclass(slots=True)
class Plan:
    pool: str
    strategy: str
    samples: int = 1
    thinking_budget: int = 0
    expected_compute_units: float = 0.0
    expected_latency_ms: float = 0.0
    policy: str = ""
    reason: str = ""
    candidates: list[Candidate] = dataclasses.field(default_factory=list)
    context_id: str = ""
    expected_accuracy: float = 0.0
    # What the plan reduces from what the request asked, and why ("" when nothing).
    clamped: str = ""
    # The winning candidate's ``escalate_below`` (a cascade's λ-set threshold); None when unset.
    escalate_below: float | None = None


@dataclasses.dataclass(slots=True)
class SampleResult:
    """One sample from a pool. ``ttft_ms`` is the pool's own figure; ``duration_ms`` is
    measured by the router, from sending the request to receiving the whole sample."""

    text: str
    thinking: str
    finish_reason: str
    prompt_tokens: int
    output_tokens: int
    thinking_tokens: int
    ttft_ms: float
    model: str
    simulated: bool
    duration_ms: float
    # Compute units the pool spent beside the tokens above (a SoftCoT assistant's pass), as it reports them.
    extra_compute_units: float = 0.0
    # The pool that drew the sample when it is not the plan's (a cascade's escalation); "" for the plan's pool.
    pool: str = ""


@dataclasses.dataclass(slots=True)
class Answer:
    text: str
    finish_reason: str
    samples: list[SampleResult]
    model: str
    simulated: bool
    ttft_ms: float
    # Set when the work was not plain samples (voting): measured cost and sample count.
    compute_units: float | None = None
    sample_count: int | None = None
    task_summary: object | None = None
