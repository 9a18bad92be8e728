"""The Helm chart's values as pydantic models; ``values.schema.json`` is generated
from them (``python -m ponder_operator.crdgen``).

Pools and policies in the values reuse the CRD spec models, and ``config`` is
``ponder.yaml``'s ``PonderConfig``, so the chart rejects what the operator and the
router would reject, with the same field names.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ponder.common.config import NAME_RE, PonderConfig
from ponder.common.crd_models import ConsolidationPolicySpec, ModelPoolSpec, RoutingPolicySpec

QUANTITY = r"^([+]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


class _V(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Image(_V):
    repository: str = Field(..., min_length=1, description="Image repository, without the registry.")
    tag: str = Field("", description="Image tag; empty: the chart's appVersion.")
    digest: str = Field("", pattern=r"^(sha256:[a-f0-9]{64})?$", description="Pin by digest; wins over tag.")


class ResourceList(_V):
    cpu: str | None = Field(None, pattern=QUANTITY, description="CPU quantity.")
    memory: str | None = Field(None, pattern=QUANTITY, description="Memory quantity.")


class Resources(_V):
    requests: ResourceList = Field(default_factory=ResourceList, description="Requested resources.")
    limits: ResourceList = Field(default_factory=ResourceList, description="Resource limits.")


class Pdb(_V):
    enabled: bool = Field(True, description="Render a PodDisruptionBudget.")
    minAvailable: int = Field(1, ge=0, description="Pods that must stay up during voluntary disruptions.")


class Placement(_V):
    """Where a component's pods run, and what is added to them (pod-template overrides)."""

    nodeSelector: dict[str, str] = Field(default_factory=dict, description="Node labels the pods require.")
    tolerations: list[dict[str, Any]] = Field(default_factory=list, description="Pod tolerations.")
    affinity: dict[str, Any] = Field(default_factory=dict, description="Pod affinity rules.")
    podAnnotations: dict[str, str] = Field(default_factory=dict, description="Annotations on the pods.")
    podLabels: dict[str, str] = Field(default_factory=dict, description="Extra labels on the pods.")
    extraEnv: list[dict[str, Any]] = Field(default_factory=list, description="Extra container env entries.")
    extraEnvFrom: list[dict[str, Any]] = Field(
        default_factory=list, description="Extra envFrom entries (secretRef, configMapRef)."
    )
    extraVolumes: list[dict[str, Any]] = Field(default_factory=list, description="Extra pod volumes.")
    extraVolumeMounts: list[dict[str, Any]] = Field(default_factory=list, description="Mounts of the extra volumes.")
    serviceAccountAnnotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations on the component's ServiceAccount (workload identity)."
    )


class RouterAuth(_V):
    keysSecret: str = Field(
        "", description="Secret with keys.json ({key id: {tenant, rights, sha256}}) checked before the Redis key "
                        "store; empty: Redis keys only. The router requires a key on every call in the chart."
    )
    serviceKeySecret: str = Field(
        "", description="Secret whose key `key` is the API key the router sends to its voting service; empty: none."
    )


class Router(Placement):
    replicas: int = Field(2, ge=1, le=100, description="Router pods.")
    image: Image = Field(..., description="Router and consolidator image.")
    grpcPort: int = Field(50051, ge=1, le=65535, description="gRPC port (ponder.v1.Router and grpc.health.v1).")
    metricsPort: int = Field(9464, ge=1, le=65535, description="Prometheus metrics port.")
    httpPort: int = Field(8080, ge=0, le=65535, description="OpenAI-compatible HTTP API port (/v1/...); 0 turns it off.")
    serviceType: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field("ClusterIP", description="Service type.")
    resources: Resources = Field(default_factory=Resources, description="Container resources.")
    pdb: Pdb = Field(default_factory=Pdb, description="PodDisruptionBudget.")
    drainDelaySeconds: int = Field(
        5, ge=0, le=300, description="preStop wait before SIGTERM, so the Service stops sending new calls first."
    )
    graceSeconds: int = Field(
        5, ge=0, le=600, description="In-flight calls' time after SIGTERM; keep equal to ponder.yaml router.grace_s."
    )
    auth: RouterAuth = Field(default_factory=lambda: RouterAuth(), description="API key sources.")


class Consolidator(Placement):
    enabled: bool = Field(True, description="Run the sleep-time consolidator (`ponder consolidator-serve`).")
    replicas: int = Field(1, ge=1, le=10, description="Consolidator pods.")
    grpcPort: int = Field(50061, ge=1, le=65535, description="Consolidator gRPC port.")
    metricsPort: int = Field(9464, ge=1, le=65535, description="Prometheus metrics port.")
    resources: Resources = Field(default_factory=Resources, description="Container resources.")
    pdb: Pdb = Field(default_factory=lambda: Pdb(enabled=False), description="PodDisruptionBudget.")


class LeaderElection(_V):
    enabled: bool = Field(True, description="Elect one active replica through a Lease.")
    leaseDurationS: int = Field(15, ge=5, le=300, description="How long a Lease record must stay unchanged before "
                                "a candidate takes over (judged on the candidate's own clock).")
    renewDeadlineS: int = Field(10, ge=2, le=299, description="The leader stops after this long without a "
                                "successful renewal; must lie between renewPeriodS and leaseDurationS.")
    renewPeriodS: int = Field(2, ge=1, le=100, description="How often the leader renews and others retry.")

    @model_validator(mode="after")
    def _order(self) -> "LeaderElection":
        if not self.renewPeriodS < self.renewDeadlineS < self.leaseDurationS:
            raise ValueError(f"need renewPeriodS ({self.renewPeriodS}) < renewDeadlineS ({self.renewDeadlineS}) "
                             f"< leaseDurationS ({self.leaseDurationS})")
        return self


class PoolImages(_V):
    cpu: Image = Field(..., description="Pool image for llamacpp, openai, transformers and sim backends.")
    cuda: Image = Field(..., description="Pool image for vllm and GPU pools.")


class Operator(Placement):
    enabled: bool = Field(True, description="Run the operator (otherwise config comes from `config`).")
    replicas: int = Field(2, ge=1, le=5, description="Operator pods; one is active at a time.")
    image: Image = Field(..., description="Operator image.")
    watchNamespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty: all namespaces (ClusterRole)."
    )
    leaderElection: LeaderElection = Field(default_factory=LeaderElection, description="Leader election.")
    poolImages: PoolImages = Field(..., description="Default images for ModelPools without spec.image.")
    demandPollS: int = Field(30, ge=5, le=3600, description="How often planned demand is read.")
    workerCeiling: int = Field(
        1000, ge=1, le=100000, description="Fixed maxReplicas of every pool's Ray worker group; Serve's "
        "autoscaler, bounded by each ModelPool's replicas, decides how many pods run."
    )
    healthPort: int = Field(8080, ge=1, le=65535, description="Port of /healthz (liveness and readiness probes).")
    uninstallTimeoutS: int = Field(
        600, ge=30, le=3600, description="How long the pre-delete hook waits for ponder objects and RayServices to go."
    )
    resources: Resources = Field(default_factory=Resources, description="Container resources.")
    pdb: Pdb = Field(default_factory=Pdb, description="PodDisruptionBudget.")


class Persistence(_V):
    enabled: bool = Field(True, description="Keep Redis data on a PersistentVolumeClaim.")
    size: str = Field("8Gi", pattern=QUANTITY, description="Volume size.")
    storageClass: str = Field("", description="StorageClass; empty: the cluster default.")


class RedisAuth(_V):
    existingSecret: str = Field(
        "", description="Secret holding the password (key existingSecretKey); empty: the chart creates "
        "<release>-ponder-redis with a random password, kept across upgrades."
    )
    existingSecretKey: str = Field("password", min_length=1, description="Key of the password in the Secret.")


class Redis(_V):
    enabled: bool = Field(True, description="Run Redis in the release; false: use externalUrl.")
    externalUrl: str = Field("", pattern=r"^(rediss?://.*)?$", description="redis:// URL of an external Redis.")
    image: Image = Field(..., description="Redis image.")
    appendonly: bool = Field(True, description="Append-only persistence (appendfsync everysec).")
    auth: RedisAuth = Field(default_factory=RedisAuth, description="Password (requirepass) from a Secret.")
    maxmemoryMb: int = Field(
        768, ge=16, le=1_000_000, description="Redis maxmemory in MiB; keep it under the memory limit. With the "
        "noeviction policy, writes fail when full instead of evicting stored contexts."
    )
    outcomeMaxlen: int = Field(
        100_000, ge=1000, le=100_000_000, description="Outcome records kept (the stream is trimmed by length); "
        "size it with maxmemoryMb (a record takes about 0.5-1 KiB)."
    )
    persistence: Persistence = Field(default_factory=Persistence, description="Data volume.")
    resources: Resources = Field(default_factory=Resources, description="Container resources.")


class NamedPool(_V):
    name: str = Field(..., pattern=NAME_RE, max_length=40, description="ModelPool name.")
    spec: ModelPoolSpec = Field(default_factory=ModelPoolSpec, description="ModelPool spec.")


class NamedConsolidation(_V):
    name: str = Field(..., pattern=NAME_RE, description="ConsolidationPolicy name.")
    spec: ConsolidationPolicySpec = Field(..., description="ConsolidationPolicy spec.")


class RoutingPolicyValues(_V):
    enabled: bool = Field(True, description="Render a RoutingPolicy named after the release.")
    spec: RoutingPolicySpec = Field(default_factory=RoutingPolicySpec, description="RoutingPolicy spec.")


class ServiceMonitor(_V):
    enabled: bool = Field(False, description="Render ServiceMonitors (needs the Prometheus operator's CRDs).")
    interval: str = Field("30s", pattern=r"^[0-9]+(ms|s|m|h)$", description="Scrape interval.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels for Prometheus selection.")


class GrafanaDashboard(_V):
    enabled: bool = Field(False, description="Ship the ponder dashboard as a ConfigMap for Grafana's dashboard sidecar.")
    labels: dict[str, str] = Field(
        default_factory=lambda: {"grafana_dashboard": "1"}, description="Labels the sidecar selects ConfigMaps by."
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations (the sidecar's folder annotation, e.g. grafana_folder)."
    )
    namespace: str = Field("", description="Namespace of the ConfigMap (where the sidecar looks); empty: the release's.")


class Metrics(_V):
    serviceMonitor: ServiceMonitor = Field(default_factory=ServiceMonitor, description="ServiceMonitor.")
    grafanaDashboard: GrafanaDashboard = Field(default_factory=GrafanaDashboard, description="Grafana dashboard.")


class Otlp(_V):
    endpoint: str = Field(
        "", description="OTLP/gRPC collector URL every ponder container (and every pool pod the operator creates) "
        "exports traces to, e.g. http://otel-collector.observability:4317; empty: no export (off).",
    )
    insecure: bool = Field(True, description="Plaintext gRPC to the collector (OTEL_EXPORTER_OTLP_INSECURE); false: TLS.")
    headersSecret: str = Field(
        "", pattern=r"^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)?$",
        description="Secret whose key `headers` holds OTEL_EXPORTER_OTLP_HEADERS (e.g. an auth header) for the "
        "release's containers; empty: none.",
    )
    samplerRatio: float = Field(
        1.0, ge=0.0, le=1.0,
        description="Share of new traces sampled (parentbased_traceidratio); a caller's sampled flag wins.",
    )
    resourceAttributes: dict[str, str] = Field(
        default_factory=dict,
        description="Extra OTel resource attributes on every span (e.g. deployment.environment: prod); values "
        "percent-encoded where they hold ',' or '='.",
    )


class Observability(_V):
    otlp: Otlp = Field(default_factory=Otlp, description="OpenTelemetry trace export over OTLP (off by default).")


class NetworkPolicy(_V):
    enabled: bool = Field(True, description="Render NetworkPolicies.")
    routerIngressFrom: list[dict[str, Any]] = Field(
        default_factory=list, description="NetworkPolicy peers allowed to call the router; empty: any."
    )
    poolGrpcPort: int = Field(9000, ge=1, le=65535, description="Pools' Serve gRPC port, open only to ponder's pods.")
    rayControlFrom: list[dict[str, Any]] = Field(
        default_factory=list, description="Peers allowed to Ray's dashboard/agent ports on pool pods; empty: any namespace."
    )


class CertIssuer(_V):
    name: str = Field("", description="Issuer or ClusterIssuer name; required with certManager.enabled.")
    kind: Literal["Issuer", "ClusterIssuer"] = Field("ClusterIssuer", description="Issuer kind.")
    group: str = Field("cert-manager.io", description="Issuer API group.")


class CertManager(_V):
    enabled: bool = Field(False, description="Render a cert-manager Certificate for the router and consolidator.")
    issuerRef: CertIssuer = Field(default_factory=CertIssuer, description="Who signs it.")
    duration: str = Field("2160h", pattern=r"^[0-9]+(h|m|s)$", description="Certificate lifetime.")
    renewBefore: str = Field("360h", pattern=r"^[0-9]+(h|m|s)$", description="Renew this long before expiry.")
    dnsNames: list[str] = Field(default_factory=list, description="Extra DNS names beyond the Services' own.")


class TLSValues(_V):
    enabled: bool = Field(False, description="TLS on the router, voting, consolidator gRPC servers and the HTTP front.")
    secretName: str = Field("", description="kubernetes.io/tls Secret mounted by the servers; empty: <fullname>-tls.")
    clientAuth: Literal["none", "optional", "require"] = Field(
        "none", description="Client certificates: none, optional (admitted without one), require (mutual TLS).")
    caSecretName: str = Field("", description="Secret whose ca.crt verifies client certificates; empty: secretName's.")
    certManager: CertManager = Field(default_factory=CertManager, description="cert-manager Certificate.")

    @model_validator(mode="after")
    def _issuer(self) -> "TLSValues":
        if self.enabled and self.certManager.enabled and not self.certManager.issuerRef.name:
            raise ValueError("tls.certManager.issuerRef.name is required with tls.certManager.enabled")
        return self


class ChartValues(_V):
    """Root of the chart's values."""

    nameOverride: str = Field("", description="Replaces the chart name in object names.")
    fullnameOverride: str = Field("", description="Replaces the release-chart prefix of object names.")
    imageRegistry: str = Field("ghcr.io/ponder-dev", description="Registry prefixed to every ponder image.")
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] = Field("IfNotPresent", description="Pull policy.")
    imagePullSecrets: list[dict[str, str]] = Field(default_factory=list, description="Pull secrets (name).")
    router: Router = Field(..., description="Router.")
    consolidator: Consolidator = Field(default_factory=Consolidator, description="Consolidator.")
    operator: Operator = Field(..., description="Operator.")
    redis: Redis = Field(..., description="Redis.")
    config: PonderConfig = Field(
        default_factory=PonderConfig, description="ponder.yaml used as is when the operator is disabled."
    )
    configMapName: str = Field("ponder-config", pattern=NAME_RE, description="ConfigMap holding ponder.yaml.")
    pools: list[NamedPool] = Field(default_factory=list, description="ModelPools the release creates.")
    routingPolicy: RoutingPolicyValues = Field(default_factory=RoutingPolicyValues, description="RoutingPolicy.")
    consolidationPolicies: list[NamedConsolidation] = Field(
        default_factory=list, description="ConsolidationPolicies the release creates."
    )
    metrics: Metrics = Field(default_factory=Metrics, description="Prometheus integration.")
    observability: Observability = Field(default_factory=Observability, description="OpenTelemetry tracing.")
    networkPolicy: NetworkPolicy = Field(default_factory=NetworkPolicy, description="NetworkPolicies.")
    tls: TLSValues = Field(default_factory=TLSValues, description="TLS and mutual TLS of ponder's servers.")
    podSecurityContext: dict[str, Any] = Field(default_factory=dict, description="Pod securityContext of every pod.")
    containerSecurityContext: dict[str, Any] = Field(
        default_factory=dict, description="securityContext of every ponder container."
    )
