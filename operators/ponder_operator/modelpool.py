"""ModelPool -> KubeRay RayService and a gRPC Service (pure: spec in, manifests out).

The RayService runs one Serve application named after the pool, built by
``ponder.pools.serve_app:build_app`` with ``{"pool": PoolConfig}`` and reached
through Serve's gRPC proxy on every Ray node. The Serve deployment's autoscaling
comes from ``spec.autoscaling`` (see ``Autoscaling.target_ongoing_requests`` for
the metric translation); the worker group mirrors the replica bounds because one
worker pod hosts one replica (its CPUs and GPUs are the replica's reservation),
and KubeRay's in-tree autoscaler adds pods for pending replicas.

The Service selects the pool's Ray pods that KubeRay marks ``ray.io/serve=true``
(a healthy Serve proxy), so clients reach ready proxies of the active cluster
and of a pending one during an upgrade.

``parse_spec`` raises ``InvalidSpec`` listing ``spec.<path>: message``.
"""
from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import ValidationError

from ponder.common.config import BACKEND_CONFIGS
from ponder.common.crd_models import ModelPoolSpec
from ponder_operator import names
from ponder_operator.crds import MAX_NAME
from ponder_operator.settings import Settings


class InvalidSpec(ValueError):
    """A custom resource's spec failed validation; ``problems`` is [(path, message)]."""

    def __init__(self, kind: str, name: str, problems: list[tuple[str, str]]):
        self.kind = kind
        self.name = name
        self.problems = problems
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))


def loc(parts: tuple[Any, ...], root: str = "spec") -> str:
    out = root
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in BACKEND_CONFIGS and out.endswith("backend"):
            continue  # discriminated-union tag, not a path element
        else:
            out += f".{part}"
    return out


def validate(model: type, kind: str, name: str, spec: Any) -> Any:
    """Validate a spec mapping with its model; raise ``InvalidSpec`` with field paths."""
    problems: list[tuple[str, str]] = []
    if len(name) > MAX_NAME:
        problems.append(("metadata.name", f"must be at most {MAX_NAME} characters, got {len(name)}"))
    try:
        parsed = model.model_validate(dict(spec or {}))
    except ValidationError as e:
        problems += [(loc(err["loc"]), err["msg"]) for err in e.errors()]
        parsed = None
    if problems:
        raise InvalidSpec(kind, name, problems)
    return parsed


def parse_spec(name: str, spec: Any) -> ModelPoolSpec:
    return validate(ModelPoolSpec, "ModelPool", name, spec)


def pool_image(spec: ModelPoolSpec, settings: Settings) -> str:
    if spec.image:
        return spec.image
    gpu = spec.resources.gpus > 0 or spec.backend.needs_gpu
    return settings.cuda_image if gpu else settings.cpu_image


def autoscaling_config(spec: ModelPoolSpec, floor: int | None = None) -> dict[str, Any] | None:
    """Serve ``autoscaling_config`` for the pool, or None for a fixed replica count.

    ``floor`` (difficulty-aware scaling) raises ``min_replicas`` within
    ``[replicas.min, replicas.max]``.
    """
    r, a = spec.replicas, spec.autoscaling
    low = r.min if floor is None else min(max(floor, r.min), r.max)
    if r.min == r.max and not a.demand.enabled:
        return None
    cfg: dict[str, Any] = {
        "min_replicas": low,
        "max_replicas": r.max,
        "target_ongoing_requests": a.target_ongoing_requests(),
        "upscale_delay_s": a.upscale_delay_s,
        "downscale_delay_s": a.downscale_delay_s,
    }
    if a.scale_to_zero and a.downscale_to_zero_delay_s is not None:
        cfg["downscale_to_zero_delay_s"] = a.downscale_to_zero_delay_s
    return cfg


def serve_config(name: str, namespace: str, spec: ModelPoolSpec, settings: Settings, floor: int | None = None) -> dict:
    """The ``serveConfigV2`` document (as a mapping) of the pool's RayService."""
    pool = spec.to_pool_config(name).model_dump(mode="json")
    args: dict[str, Any] = {"pool": pool}
    if spec.softcot is not None:
        args["softcot"] = spec.softcot.model_dump(mode="json")
    deployment: dict[str, Any] = {
        "name": names.deployment_name(name),
        "max_ongoing_requests": spec.max_queued_requests,
        "ray_actor_options": {"num_cpus": spec.cpus_per_replica(), "num_gpus": spec.gpus_per_replica()},
    }
    auto = autoscaling_config(spec, floor)
    if auto is None:
        deployment["num_replicas"] = spec.replicas.max
    else:
        deployment["autoscaling_config"] = auto
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": settings.pool_http_port},
        "grpc_options": {"port": settings.pool_grpc_port, "grpc_servicer_functions": [names.SERVICER_FUNCTION]},
        "applications": [
            {
                "name": name,
                "route_prefix": f"/{name}",
                "import_path": names.IMPORT_PATH,
                "args": args,
                "deployments": [deployment],
            }
        ],
    }


_POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
_CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _pod_template(
    name: str, container: str, image: str, resources: dict, settings: Settings, ports: list[dict],
    spec: ModelPoolSpec | None = None,
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": container,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "resources": resources,
        "ports": copy.deepcopy(ports),
        "env": [{"name": "PONDER_POOL", "value": name}],
        "securityContext": copy.deepcopy(_CONTAINER_SECURITY),
    }
    pod: dict[str, Any] = {"containers": [c], "securityContext": copy.deepcopy(_POD_SECURITY)}
    if settings.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in settings.image_pull_secrets]
    if spec is not None:
        if spec.node_selector:
            pod["nodeSelector"] = dict(spec.node_selector)
        if spec.tolerations:
            pod["tolerations"] = [t.model_dump(exclude_none=True) for t in spec.tolerations]
        if spec.resources.shared_memory:
            pod["volumes"] = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": spec.resources.shared_memory}}]
            c["volumeMounts"] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    return {"metadata": {"labels": names.pool_labels(name)}, "spec": pod}


def rayservice(name: str, namespace: str, spec: ModelPoolSpec, settings: Settings, floor: int | None = None) -> dict:
    """The pool's RayService manifest (no owner reference; the handler adopts it)."""
    image = pool_image(spec, settings)
    res = spec.resources
    limits: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    if res.gpus:
        limits[res.gpu_resource_name] = res.gpus
    worker_resources = {"requests": dict(limits), "limits": dict(limits)}
    head_resources = {
        "requests": {"cpu": settings.head_cpu, "memory": settings.head_memory},
        "limits": {"cpu": settings.head_cpu, "memory": settings.head_memory},
    }
    serve_ports = [
        {"name": "serve", "containerPort": settings.pool_http_port},
        {"name": "grpc", "containerPort": settings.pool_grpc_port},
    ]
    head_ports = [
        {"name": "gcs-server", "containerPort": 6379},
        {"name": "dashboard", "containerPort": 8265},
        {"name": "client", "containerPort": 10001},
        *serve_ports,
    ]
    r = spec.replicas
    auto = autoscaling_config(spec, floor)
    low = auto["min_replicas"] if auto else r.max
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": names.rayservice_name(name), "namespace": namespace, "labels": names.pool_labels(name)},
        "spec": {
            "serveConfigV2": yaml.safe_dump(serve_config(name, namespace, spec, settings, floor), sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": spec.ray_version,
                "enableInTreeAutoscaling": True,
                "autoscalerOptions": {"upscalingMode": "Default", "idleTimeoutSeconds": int(spec.autoscaling.downscale_delay_s)},
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                    "template": _pod_template(name, "ray-head", image, head_resources, settings, head_ports),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "pool",
                        "replicas": low,
                        "minReplicas": low,
                        "maxReplicas": r.max,
                        "rayStartParams": {},
                        "template": _pod_template(name, "ray-worker", image, worker_resources, settings, serve_ports, spec),
                    }
                ],
            },
        },
    }


def service(name: str, namespace: str, settings: Settings) -> dict:
    """ClusterIP Service for the pool's Serve gRPC (and HTTP) proxies."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names.service_name(name), "namespace": namespace, "labels": names.pool_labels(name)},
        "spec": {
            "type": "ClusterIP",
            "selector": {names.POOL_LABEL: name, "ray.io/serve": "true"},
            "ports": [
                {"name": "grpc", "port": settings.pool_grpc_port, "targetPort": settings.pool_grpc_port, "appProtocol": "grpc"},
                {"name": "http", "port": settings.pool_http_port, "targetPort": settings.pool_http_port},
            ],
        },
    }


def children(name: str, namespace: str, spec: Any, settings: Settings, floor: int | None = None) -> list[dict]:
    """Validate the spec and render every child of the ModelPool (RayService first)."""
    parsed = parse_spec(name, spec)
    return [rayservice(name, namespace, parsed, settings, floor), service(name, namespace, settings)]
