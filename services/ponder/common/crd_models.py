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

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from ponder.common.config import (
    BACKEND_CONFIGS,
    NAME_RE,
    PoolConfig,
    ReplicaRange,
    Replicas,
    RoutingConfig,
    VLLMBackend,
)

GROUP = "ponder.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

Tier = Literal["small", "reasoning", "softcot"]
QUANTITY_RE = r"^([+]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
LABEL_KEY_RE = r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?$"
CRON_RE = r"^(\S+\s+){4}\S+$"
# Ray inside the pool images (docker/pool-*.Dockerfile RAY_VERSION).
RAY_VERSION = "2.44.1"


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
    dead_band: float = Field(
        0.05, ge=0, lt=1, description="Projected demand below this fraction of one replica's capacity counts as "
        "none, so the router's decaying demand rate lets an idle pool reach replicas.min (and zero)."
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


class EnvVar(_Model):
    """A container environment variable (Kubernetes ``EnvVar``)."""

    name: str = Field(..., min_length=1, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", description="Variable name.")
    value: str | None = Field(None, description="Literal value.")
    valueFrom: dict[str, Any] | None = Field(
        None, description="Source of the value (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef)."
    )


class Volume(BaseModel):
    """A Kubernetes ``Volume``: a name plus one volume source, passed through as written."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(..., pattern=NAME_RE, max_length=63, description="Volume name (DNS-1123 label), unique in the pod.")


class VolumeMount(_Model):
    """Where a pod volume appears in the Ray containers (Kubernetes ``VolumeMount``)."""

    name: str = Field(..., pattern=NAME_RE, max_length=63, description="Name of a volume in pod.volumes.")
    mountPath: str = Field(..., pattern=r"^/", description="Absolute path in the container.")
    readOnly: bool = Field(False, description="Mount read-only.")
    subPath: str | None = Field(None, description="Sub-path of the volume to mount.")


class ModelCache(_Model):
    """A volume the pool's model weights are downloaded to and read from, so replicas
    added later (or restarted) skip the download. ``HF_HOME`` points into it."""

    claim_name: str | None = Field(
        None, pattern=NAME_RE, description="PersistentVolumeClaim to mount (ReadWriteMany to share it between "
        "replicas); unset: an emptyDir per pod."
    )
    size: str = Field("50Gi", pattern=QUANTITY_RE, description="emptyDir size limit when no claim is named.")
    mount_path: str = Field("/models", pattern=r"^/", description="Mount path in the Ray containers.")


class PodOverrides(_Model):
    """Additions to the pool's Ray pods (head and workers): credentials for gated
    models and API keys, a service account for cloud storage (``s3://``), volumes."""

    env: list[EnvVar] = Field(default_factory=list, max_length=256, description="Extra environment variables.")
    envFrom: list[dict[str, Any]] = Field(
        default_factory=list, max_length=64, description="Kubernetes EnvFromSource entries (secretRef, configMapRef)."
    )
    serviceAccountName: str | None = Field(
        None, pattern=NAME_RE, description="Service account of the pods (workload identity for object storage)."
    )
    volumes: list[Volume] = Field(
        default_factory=list, max_length=64, description="Kubernetes Volume entries added to the pods."
    )
    volumeMounts: list[VolumeMount] = Field(default_factory=list, max_length=64, description="Mounts of those volumes.")
    model_cache: ModelCache | None = Field(None, description="Model cache volume; unset: none.")

    @model_validator(mode="after")
    def _volumes(self) -> "PodOverrides":
        names = [v.name for v in self.volumes]
        reserved = {"dshm", "model-cache"} & set(names)
        if reserved or len(set(names)) != len(names):
            raise ValueError(f"volume names must be unique and not {sorted({'dshm', 'model-cache'})}, got {names}")
        unknown = sorted({m.name for m in self.volumeMounts} - set(names))
        if unknown:
            raise ValueError(f"volumeMounts name volumes that pod.volumes lacks: {unknown}")
        return self


class ModelPoolSpec(PoolConfig):
    """Desired state of a ``ModelPool``: one Ray Serve application on KubeRay.

    It is ``PoolConfig`` (the pool of ``ponder.yaml``) with the fields Kubernetes
    decides instead hidden: ``name`` is the CR's name, ``address`` its Service,
    ``num_cpus``/``num_gpus`` come from ``resources`` and the autoscaling target
    from ``autoscaling``. Setting one of those in a spec is refused with its path.
    """

    name: SkipJsonSchema[str | None] = Field(None, description="Set from metadata.name.")
    address: SkipJsonSchema[str | None] = Field(None, description="Set to the pool's Service.")
    num_cpus: SkipJsonSchema[float | None] = Field(None, description="Set from resources.cpu.")
    num_gpus: SkipJsonSchema[float | None] = Field(None, description="Set from resources.gpus.")
    replicas: ReplicaRange = Field(default_factory=ReplicaRange, description="Replica bounds.")  # type: ignore[assignment]
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Serve autoscaling policy.")
    resources: PoolResources = Field(default_factory=PoolResources, description="Resources of each worker pod.")
    node_selector: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Node labels the worker pods require."
    )
    tolerations: list[Toleration] = Field(default_factory=list, max_length=64, description="Tolerations of the worker pods.")
    pod: PodOverrides = Field(
        default_factory=lambda: PodOverrides(), description="Additions to the Ray pods: env, service account, volumes, model cache."
    )
    image: str | None = Field(None, min_length=1, description="Pool image; unset: the operator's default for the engine.")
    ray_version: str = Field(
        RAY_VERSION, pattern=r"^\d+\.\d+\.\d+$", max_length=32, description="Ray version inside the image (the pool images ship "
        f"{RAY_VERSION}); fields an older Ray would ignore are refused."
    )

    @field_validator("node_selector")
    @classmethod
    def _label_keys(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in v if not re.match(LABEL_KEY_RE, k))
        if bad:
            raise ValueError(f"invalid label keys {bad}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "ModelPoolSpec":
        derived = [f for f in ("name", "address", "num_cpus", "num_gpus") if getattr(self, f) is not None]
        if derived:
            raise ValueError(f"{derived} are set by the operator (metadata.name, the Service, resources); remove them")
        if self.replicas.min == 0 and not self.autoscaling.scale_to_zero:
            raise ValueError("replicas.min 0 needs autoscaling.scale_to_zero: true")
        if isinstance(self.backend, VLLMBackend):
            if self.resources.gpus < self.backend.tensor_parallel_size:
                raise ValueError(
                    f"resources.gpus ({self.resources.gpus}) must be >= backend.tensor_parallel_size "
                    f"({self.backend.tensor_parallel_size}) for vllm"
                )
        if self.autoscaling.downscale_to_zero_delay_s is not None and _version(self.ray_version) < DOWNSCALE_TO_ZERO_RAY:
            raise ValueError(
                f"autoscaling.downscale_to_zero_delay_s needs Ray >= {'.'.join(map(str, DOWNSCALE_TO_ZERO_RAY))}, "
                f"ray_version is {self.ray_version}"
            )
        return self

    def gpus_per_replica(self) -> float:
        return float(self.resources.gpus)

    def cpus_per_replica(self) -> float:
        """CPUs Ray reserves per replica: the pod's CPU quantity, at least 0.1."""
        return max(cpu_quantity(self.resources.cpu), 0.1)

    def to_pool_config(self, name: str, address: str | None = None) -> PoolConfig:
        """The ``PoolConfig`` the Serve application and the router use for this pool.

        Every field the two models share is carried over as written (``softcot``
        too, where ``PoolConfig`` declares it); the hidden ones are derived.
        """
        shared = {f for f in PoolConfig.model_fields if f in type(self).model_fields} - _DERIVED
        data = {f: getattr(self, f) for f in shared}
        data["replicas"] = Replicas(
            min=self.replicas.min, max=self.replicas.max,
            target_ongoing_requests=self.autoscaling.target_ongoing_requests(),
        )
        return PoolConfig(
            **data, name=name, address=address, num_cpus=self.cpus_per_replica(), num_gpus=self.gpus_per_replica()
        )


_DERIVED = frozenset({"name", "address", "num_cpus", "num_gpus", "replicas"})
DOWNSCALE_TO_ZERO_RAY = (2, 41, 0)


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def cpu_quantity(q: str) -> float:
    """Cores in a Kubernetes CPU quantity (``"500m"`` -> 0.5, ``"2"`` -> 2.0)."""
    if q.endswith("m"):
        return float(q[:-1]) / 1000.0
    return float(q)


# ----------------------------------------------------------------- RoutingPolicy
class RoutingPolicySpec(RoutingConfig):
    """Desired routing: ``ponder.yaml``'s ``routing`` section (pools per tier,
    budget, allowed strategies, limits) plus the ConfigMap it goes to.
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
        0.5, gt=0, le=1,
        description="Largest share of the pool's time consolidation may take: after a step of d seconds "
        "the pool rests d*(1-share)/share.",
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
    max_contexts: int | None = Field(
        None, ge=1,
        description="Cap on stored contexts (the smallest any policy sets); oldest put go first, never one a "
        "running job holds; unset: none.",
    )


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
    min_interval_s: float = Field(
        300.0, ge=0, le=86400 * 7,
        description="Shortest time between consolidations of one context, from the end of the last; "
        "a job is deferred until then.",
    )
    retention: Retention = Field(default_factory=Retention, description="How long contexts are kept.")


# ----------------------------------------------------------------- status
class Condition(_Model):
    """A standard Kubernetes condition (``metav1.Condition``)."""

    type: str = Field(..., min_length=1, max_length=316, description="Condition type: Ready or Reconciled.")
    status: Literal["True", "False", "Unknown"] = Field(..., description="True, False or Unknown.")
    reason: str = Field(
        ..., min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase reason; see the CRD documentation for the list.",
    )
    message: str = Field("", max_length=32768, description="Human-readable detail.")
    lastTransitionTime: str = Field(
        ..., json_schema_extra={"format": "date-time"}, description="RFC 3339 time the status last changed."
    )
    observedGeneration: int | None = Field(None, ge=0, description="Generation the condition was computed for.")


CONDITIONS = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


class ModelPoolStatus(_Model):
    """Observed state of a ModelPool. Reasons of ``Reconciled``: ``Applied``,
    ``InvalidSpec``, ``ApiError``; of ``Ready``: ``Ready``, ``Deploying``,
    ``Updating``, ``NoEndpoints``, ``DeployFailed``, ``Unhealthy``, ``InvalidSpec``."""

    observedGeneration: int | None = Field(None, description="Generation of the spec last reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list, max_length=8, json_schema_extra=CONDITIONS,
        description="Reconciled (children written for this generation) and Ready (serving this generation).",
    )
    rayService: str | None = Field(None, description="Name of the RayService.")
    activeCluster: str | None = Field(None, description="RayCluster serving traffic; the pool Service selects it only.")
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
    conditions: list[Condition] = Field(
        default_factory=list, max_length=8, json_schema_extra=CONDITIONS, description="Ready condition."
    )
    configMap: str | None = Field(None, description="ConfigMap holding the applied config.")



# ----------------------------------------------------------------- server-side rules
def _unset(path: str) -> str:
    # The CRD schema has no nullable fields: the API server prunes an explicit null,
    # so an unset field is simply absent.
    return f"!has({path})"


# Every cross-field rule of the models above as a CEL rule the API server checks
# (``x-kubernetes-validations``), keyed by the model it sits on; ``crdgen`` puts
# each on that model's node of the schema. Tests evaluate them offline and check
# they accept and refuse the same specs as the pydantic validators.
CEL_RULES: dict[str, list[dict[str, str]]] = {
    "ReplicaRange": [
        {"rule": "self.min <= self.max", "message": "min must be <= max", "fieldPath": ".min"},
    ],
    "BudgetPolicy": [
        {"rule": "self.target_cu_per_request <= self.max_cu_per_request",
         "message": "target_cu_per_request must be <= max_cu_per_request"},
    ],
    "RoutingPolicySpec": [
        {"rule": "!has(self.strategies) || self.strategies.all(s, self.strategies.filter(t, t == s).size() == 1)",
         "message": "strategies must not repeat", "fieldPath": ".strategies"},
    ],
    "PodOverrides": [
        {"rule": "!has(self.volumes) || self.volumes.all(v, v.name != 'dshm' && v.name != 'model-cache')",
         "message": "volume names dshm and model-cache are reserved", "fieldPath": ".volumes"},
        {"rule": "!has(self.volumes) || self.volumes.all(v, self.volumes.filter(w, w.name == v.name).size() == 1)",
         "message": "volume names must be unique", "fieldPath": ".volumes"},
        {"rule": "!has(self.volumeMounts) || "
                 "self.volumeMounts.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.name))",
         "message": "volumeMounts must name volumes in pod.volumes", "fieldPath": ".volumeMounts"},
    ],
    "ModelPoolSpec": [
        {"rule": "self.max_tokens_default <= self.max_tokens_limit",
         "message": "max_tokens_default must be <= max_tokens_limit", "fieldPath": ".max_tokens_default"},
        {"rule": f"self.tier == 'softcot' ? has(self.softcot) : {_unset('self.softcot')}",
         "message": "softcot is required for tier softcot and only valid there", "fieldPath": ".softcot"},
        {"rule": "self.tier != 'softcot' || (has(self.backend) && self.backend.kind in "
                 + repr(sorted(k for k, c in BACKEND_CONFIGS.items() if c.accepts_embeddings)) + ")",
         "message": "tier softcot needs a backend that accepts input embeddings", "fieldPath": ".backend.kind"},
        {"rule": "!has(self.replicas) || self.replicas.min > 0 || (has(self.autoscaling) && self.autoscaling.scale_to_zero)",
         "message": "replicas.min 0 needs autoscaling.scale_to_zero: true", "fieldPath": ".replicas.min"},
        {"rule": "!has(self.backend) || self.backend.kind != 'vllm' || (has(self.resources) ? self.resources.gpus : 0) >= "
                 "(has(self.backend.tensor_parallel_size) ? self.backend.tensor_parallel_size : 1)",
         "message": "resources.gpus must be >= backend.tensor_parallel_size for vllm", "fieldPath": ".resources.gpus"},
        {"rule": f"!has(self.autoscaling) || {_unset('self.autoscaling.downscale_to_zero_delay_s')} || "
                 "self.ray_version.matches('^([3-9]|[1-9][0-9]+)[.]|^2[.](4[1-9]|[5-9][0-9]|[1-9][0-9][0-9]+)[.]')",
         "message": "autoscaling.downscale_to_zero_delay_s needs ray_version >= 2.41.0",
         "fieldPath": ".autoscaling.downscale_to_zero_delay_s"},
    ],
}
