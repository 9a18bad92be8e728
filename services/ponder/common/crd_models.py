"""Specs of the Kubernetes custom resources, built on the models of ``config.py``.

``ModelPool``, ``RoutingPolicy`` and ``ConsolidationPolicy`` (group ``ponder.dev``,
version ``v1alpha1``) reuse the pool, backend, cost, thinking, speed and routing
models of ``ponder.yaml`` field for field, so a pool copied from ``ponder.yaml``
into a ``ModelPool`` keeps its meaning. Their JSON schemas become the CRDs'
``openAPIV3Schema`` (``python -m ponder_operator.crdgen``), and the operator
validates every spec with these models again before it reconciles, so a bad
spec fails with the field path (``spec.autoscaling.target: ...``).

Field names are snake_case like ``ponder.yaml``; Kubernetes objects passed
through verbatim (tolerations) keep their Kubernetes names.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ponder.common.config import (
    NAME_RE,
    Backend,
    Cost,
    LlamaCppBackend,
    PoolConfig,
    ReplicaRange,
    Replicas,
    RoutingConfig,
    SoftCoT,
    Speed,
    Thinking,
    VLLMBackend,
)

GROUP = "ponder.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

Tier = Literal["small", "reasoning", "softcot"]
QUANTITY_RE = r"^([+]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
LABEL_KEY_RE = r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?$"
CRON_RE = r"^(\S+\s+){4}\S+$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# ----------------------------------------------------------------- ModelPool
class DemandScaling(_Model):
    """Difficulty-aware scaling: raise the replica floor from the router's planned demand."""

    enabled: bool = Field(False, description="Let the operator raise min replicas from planned demand.")
    replica_capacity_cu_per_s: float = Field(
        100.0, gt=0, le=1e9, description="Compute units per second one replica sustains."
    )
    headroom: float = Field(1.2, ge=1.0, le=10.0, description="Multiplier on demand before dividing by capacity.")
    lookahead_s: float = Field(
        120.0, ge=0, le=3600, description="Extrapolate the demand trend this far ahead (0 = current demand only)."
    )


class Autoscaling(_Model):
    """Serve autoscaling for the pool's deployment.

    Serve scales on ongoing requests per replica (running plus queued at the
    replica); the other metrics are translated into that target:
    ``queue_depth`` = ``concurrency_per_replica + target``; ``tokens_per_second`` =
    ``target / tokens_per_second_per_request``.
    """

    metric: Literal["ongoing_requests", "queue_depth", "tokens_per_second"] = Field(
        "ongoing_requests", description="What the target is expressed in, per replica."
    )
    target: float = Field(2.0, gt=0, le=1e6, description="Target value of the metric per replica.")
    concurrency_per_replica: int = Field(
        1, ge=1, le=10000, description="Requests a replica runs at once (queue_depth translation)."
    )
    tokens_per_second_per_request: float = Field(
        20.0, gt=0, le=1e6, description="Decode rate of one running request (tokens_per_second translation)."
    )
    upscale_delay_s: float = Field(30.0, ge=0, le=86400, description="Demand must stay high this long to add replicas.")
    downscale_delay_s: float = Field(600.0, ge=0, le=86400, description="Demand must stay low this long to remove replicas.")
    scale_to_zero: bool = Field(False, description="Allow zero replicas when idle (replicas.min must then be 0).")
    downscale_to_zero_delay_s: float | None = Field(
        None, ge=0, le=86400, description="Idle time before the last replica goes; unset: downscale_delay_s."
    )
    demand: DemandScaling = Field(default_factory=DemandScaling, description="Difficulty-aware floor from planned demand.")

    def target_ongoing_requests(self) -> float:
        """Serve's ``target_ongoing_requests`` for this policy (> 0)."""
        if self.metric == "queue_depth":
            return self.concurrency_per_replica + self.target
        if self.metric == "tokens_per_second":
            return max(self.target / self.tokens_per_second_per_request, 0.01)
        return self.target


class Toleration(_Model):
    """A Kubernetes toleration, passed to the pool's Ray pods as written."""

    key: str | None = Field(None, description="Taint key; unset with operator Exists matches all taints.")
    operator: Literal["Equal", "Exists"] = Field("Equal", description="Equal compares value; Exists ignores it.")
    value: str | None = Field(None, description="Taint value for operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect matched; unset: all effects."
    )
    tolerationSeconds: int | None = Field(None, ge=0, description="For NoExecute: how long the pod stays bound.")


class PoolResources(_Model):
    """Kubernetes resources of one Ray worker pod; one pod hosts one replica."""

    cpu: str = Field("1", pattern=QUANTITY_RE, description="CPU request and limit (Kubernetes quantity).")
    memory: str = Field("4Gi", pattern=QUANTITY_RE, description="Memory request and limit (Kubernetes quantity).")
    gpus: int = Field(0, ge=0, le=64, description="GPUs per pod; also the GPUs Ray reserves per replica.")
    gpu_resource_name: str = Field("nvidia.com/gpu", min_length=1, description="Extended resource name of the GPUs.")
    shared_memory: str | None = Field(
        None, pattern=QUANTITY_RE, description="Size of a memory-backed /dev/shm (vLLM tensor parallelism needs it)."
    )


class ModelPoolSpec(_Model):
    """Desired state of a ``ModelPool``: one Ray Serve application on KubeRay.

    The CR's name is the pool's name (and its Serve application's name).
    """

    tier: Tier = Field("small", description="Role of the pool in plans.")
    backend: Backend = Field(default_factory=LlamaCppBackend, description="Engine serving the model.")
    softcot: SoftCoT | None = Field(None, description="Assistant and projection; required for tier softcot only.")
    cost: Cost = Field(default_factory=Cost, description="Token prices in compute units.")
    thinking: Thinking | None = Field(None, description="Thinking phase; unset: the pool answers directly.")
    speed: Speed = Field(
        default_factory=Speed, description="Declared speed; latency estimates use it until the pool is observed."
    )
    max_tokens_default: int = Field(64, ge=1, le=131072, description="max_tokens when a request sets none.")
    max_tokens_limit: int = Field(1024, ge=1, le=131072, description="Largest max_tokens a request may ask.")
    max_queued_requests: int = Field(256, ge=1, le=100000, description="Requests a replica queues before refusing.")
    replicas: ReplicaRange = Field(default_factory=ReplicaRange, description="Replica bounds.")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Serve autoscaling policy.")
    resources: PoolResources = Field(default_factory=PoolResources, description="Resources of each worker pod.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Node labels the worker pods require.")
    tolerations: list[Toleration] = Field(default_factory=list, max_length=64, description="Tolerations of the worker pods.")
    image: str | None = Field(None, min_length=1, description="Pool image; unset: the operator's default for the engine.")
    ray_version: str = Field("2.40.0", pattern=r"^\d+\.\d+\.\d+$", description="Ray version inside the image.")

    @field_validator("node_selector")
    @classmethod
    def _label_keys(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in v if not re.match(LABEL_KEY_RE, k))
        if bad:
            raise ValueError(f"invalid label keys {bad}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "ModelPoolSpec":
        if self.max_tokens_default > self.max_tokens_limit:
            raise ValueError(
                f"max_tokens_default ({self.max_tokens_default}) must be <= max_tokens_limit ({self.max_tokens_limit})"
            )
        if self.tier == "softcot" and self.softcot is None:
            raise ValueError("tier 'softcot' needs softcot (assistant_model, projection_path)")
        if self.tier != "softcot" and self.softcot is not None:
            raise ValueError(f"softcot is only valid for tier 'softcot', not {self.tier!r}")
        if self.replicas.min == 0 and not self.autoscaling.scale_to_zero:
            raise ValueError("replicas.min 0 needs autoscaling.scale_to_zero: true")
        if isinstance(self.backend, VLLMBackend):
            if self.resources.gpus < self.backend.tensor_parallel_size:
                raise ValueError(
                    f"resources.gpus ({self.resources.gpus}) must be >= backend.tensor_parallel_size "
                    f"({self.backend.tensor_parallel_size}) for vllm"
                )
        return self

    def gpus_per_replica(self) -> float:
        return float(self.resources.gpus)

    def cpus_per_replica(self) -> float:
        """CPUs Ray reserves per replica: the pod's CPU quantity, at least 0.1."""
        return max(cpu_quantity(self.resources.cpu), 0.1)

    def to_pool_config(self, name: str, address: str | None = None) -> PoolConfig:
        """The ``PoolConfig`` the Serve application and the router use for this pool."""
        return PoolConfig(
            name=name,
            tier=self.tier,
            backend=self.backend,
            cost=self.cost,
            thinking=self.thinking,
            softcot=self.softcot,
            speed=self.speed,
            max_tokens_default=self.max_tokens_default,
            max_tokens_limit=self.max_tokens_limit,
            max_queued_requests=self.max_queued_requests,
            replicas=Replicas(
                min=self.replicas.min,
                max=self.replicas.max,
                target_ongoing_requests=self.autoscaling.target_ongoing_requests(),
            ),
            num_cpus=self.cpus_per_replica(),
            num_gpus=self.gpus_per_replica(),
            address=address,
        )


def cpu_quantity(q: str) -> float:
    """Cores in a Kubernetes CPU quantity (``"500m"`` -> 0.5, ``"2"`` -> 2.0)."""
    if q.endswith("m"):
        return float(q[:-1]) / 1000.0
    return float(q)


# ----------------------------------------------------------------- RoutingPolicy
class RoutingPolicySpec(RoutingConfig):
    """Desired routing: ``ponder.yaml``'s ``routing`` section (pools per tier,
    classifier, budget, allowed strategies, limits) plus the ConfigMap it goes to.
    One RoutingPolicy per namespace configures the router."""

    config_map: str = Field(
        "ponder-config", pattern=NAME_RE, description="ConfigMap the operator writes ponder.yaml into."
    )

    def to_routing_config(self) -> RoutingConfig:
        """``ponder.yaml``'s routing section."""
        return RoutingConfig.model_validate(self.model_dump(exclude={"config_map"}))


# ----------------------------------------------------------------- ConsolidationPolicy
class IdleThresholds(_Model):
    """When the pool counts as idle enough to run consolidation passes."""

    max_ongoing_requests_per_replica: float = Field(
        0.5, ge=0, le=10000, description="Idle when ongoing requests per replica stay at or below this."
    )
    min_idle_s: float = Field(60.0, ge=0, le=86400, description="How long the pool must stay idle before a pass.")
    max_pass_share: float = Field(
        0.5, gt=0, le=1, description="Largest share of the pool's replicas consolidation may occupy."
    )


class ConsolidationPass(_Model):
    """One offline pass over a stored context."""

    kind: Literal["re_represent", "summarise", "precompute_answers"] = Field(..., description="What the pass does.")
    max_tokens: int = Field(512, ge=1, le=131072, description="Output tokens the pass may spend per context.")
    num_questions: int = Field(0, ge=0, le=1000, description="precompute_answers: likely questions to answer.")


class Retention(_Model):
    raw_ttl_s: int = Field(7 * 86400, ge=60, le=10 * 365 * 86400, description="How long raw contexts are kept.")
    consolidated_ttl_s: int = Field(
        30 * 86400, ge=60, le=10 * 365 * 86400, description="How long consolidated contexts are kept."
    )
    max_contexts: int | None = Field(None, ge=1, description="Cap on stored contexts; oldest go first; unset: none.")


class ConsolidationPolicySpec(_Model):
    """Desired sleep-time consolidation for the contexts of one pool."""

    pool: str = Field(..., pattern=NAME_RE, description="ModelPool (same namespace) that runs the passes.")
    idle: IdleThresholds = Field(default_factory=IdleThresholds, description="Idle thresholds.")
    passes: list[ConsolidationPass] = Field(
        default_factory=lambda: [ConsolidationPass(kind="summarise")],
        min_length=1,
        max_length=16,
        description="Passes in order.",
    )
    schedule: str | None = Field(
        None, pattern=CRON_RE, description="Cron window (5 fields, UTC) when passes may run; unset: whenever idle."
    )
    min_interval_s: float = Field(300.0, ge=0, le=86400 * 7, description="Shortest time between passes on one context.")
    retention: Retention = Field(default_factory=Retention, description="How long contexts are kept.")


# ----------------------------------------------------------------- status
class Condition(_Model):
    """A standard Kubernetes condition (``metav1.Condition``)."""

    type: str = Field(..., description="Condition type, e.g. Ready.")
    status: Literal["True", "False", "Unknown"] = Field(..., description="True, False or Unknown.")
    reason: str = Field(..., description="CamelCase reason; see the CRD documentation for the list.")
    message: str = Field("", description="Human-readable detail.")
    lastTransitionTime: str | None = Field(None, description="RFC 3339 time the status last changed.")
    observedGeneration: int | None = Field(None, ge=0, description="Generation the condition was computed for.")


class ModelPoolStatus(_Model):
    """Observed state of a ModelPool; reasons of the Ready condition: ``Ready``,
    ``Deploying``, ``DeployFailed``, ``Unhealthy``, ``InvalidSpec``, ``ApiError``."""

    observedGeneration: int | None = Field(None, description="Generation of the spec last reconciled.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready and Scaling conditions.")
    rayService: str | None = Field(None, description="Name of the RayService.")
    address: str | None = Field(None, description="host:port of the pool's gRPC Service.")
    applicationStatus: str | None = Field(None, description="Serve application status reported by KubeRay.")
    replicasFloor: int | None = Field(None, description="Current min replicas after difficulty-aware scaling.")
    plannedDemandCuPerS: float | None = Field(None, description="Planned compute units per second last read.")
    plannedDemandAt: float | None = Field(None, description="Unix time of that reading.")
    floorRaisedAt: float | None = Field(None, description="Unix time the floor was last raised.")


class PolicyStatus(_Model):
    """Observed state of a RoutingPolicy or ConsolidationPolicy; reasons of the
    Ready condition: ``Applied``, ``PoolNotFound``, ``Conflict``, ``InvalidSpec``, ``ApiError``."""

    observedGeneration: int | None = Field(None, description="Generation of the spec last applied.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready condition.")
    configMap: str | None = Field(None, description="ConfigMap holding the applied config.")

