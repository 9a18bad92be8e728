"""Operator settings, read once from the environment the chart sets."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    namespace: str = "ponder"
    watch_namespaces: tuple[str, ...] = ()  # empty: every namespace
    cpu_image: str = "ghcr.io/ponder-dev/ponder-pool:0.1.0"
    cuda_image: str = "ghcr.io/ponder-dev/ponder-pool-cuda:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: tuple[str, ...] = ()
    outcome_maxlen: int = 100_000
    router_port: int = 50051
    router_metrics_service: str = "ponder-router"
    router_metrics_port: int = 9464
    pool_grpc_port: int = 9000
    pool_http_port: int = 8000
    head_cpu: str = "1"
    head_memory: str = "2Gi"
    demand_poll_s: float = 30.0
    worker_ceiling: int = 1000
    node_idle_timeout_s: int = 60
    request_timeout_s: float = 10.0
    labels: dict[str, str] = field(default_factory=lambda: {"app.kubernetes.io/part-of": "ponder"})
    # OpenTelemetry export the operator hands on to pool pods (the chart's observability.otlp); "" endpoint: off.
    otlp_endpoint: str = ""
    otlp_insecure: str = "true"
    otel_sampler_arg: str = "1"
    pool_otel_resource_attributes: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        e = os.environ if env is None else env
        d = cls()
        secrets = tuple(s for s in e.get("PONDER_IMAGE_PULL_SECRETS", "").split(",") if s)
        return cls(
            namespace=e.get("PONDER_NAMESPACE", d.namespace),
            watch_namespaces=tuple(n for n in e.get("PONDER_WATCH_NAMESPACES", "").split(",") if n),
            cpu_image=e.get("PONDER_POOL_IMAGE_CPU", d.cpu_image),
            cuda_image=e.get("PONDER_POOL_IMAGE_CUDA", d.cuda_image),
            image_pull_policy=e.get("PONDER_IMAGE_PULL_POLICY", d.image_pull_policy),
            image_pull_secrets=secrets,
            outcome_maxlen=int(e.get("PONDER_OUTCOME_MAXLEN", d.outcome_maxlen)),
            router_port=int(e.get("PONDER_ROUTER_PORT", d.router_port)),
            router_metrics_service=e.get("PONDER_ROUTER_METRICS_SERVICE", d.router_metrics_service),
            router_metrics_port=int(e.get("PONDER_ROUTER_METRICS_PORT", d.router_metrics_port)),
            demand_poll_s=float(e.get("PONDER_DEMAND_POLL_S", d.demand_poll_s)),
            worker_ceiling=int(e.get("PONDER_WORKER_CEILING", d.worker_ceiling)),
            node_idle_timeout_s=int(e.get("PONDER_NODE_IDLE_TIMEOUT_S", d.node_idle_timeout_s)),
            request_timeout_s=float(e.get("PONDER_API_TIMEOUT_S", d.request_timeout_s)),
            otlp_endpoint=e.get("OTEL_EXPORTER_OTLP_ENDPOINT", d.otlp_endpoint),
            otlp_insecure=e.get("OTEL_EXPORTER_OTLP_INSECURE", d.otlp_insecure),
            otel_sampler_arg=e.get("OTEL_TRACES_SAMPLER_ARG", d.otel_sampler_arg),
            pool_otel_resource_attributes=e.get("PONDER_POOL_OTEL_RESOURCE_ATTRIBUTES", d.pool_otel_resource_attributes),
        )
