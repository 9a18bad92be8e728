"""ModelPool -> KubeRay RayService and a gRPC Service (pure: spec in, manifests out).

The RayService runs one Serve application named after the pool, built by
``ponder.pools.serve_app:build_app`` with ``{"pool": PoolConfig}`` and reached
through Serve's gRPC proxy on every Ray node.

Scaling. KubeRay leaves a worker group's ``replicas``/``minReplicas``/``maxReplicas``
out of the hash that decides on a new cluster, so changing them on a running
RayService changes nothing. The operator therefore never moves them: the worker
group is ``minReplicas: 0`` up to a fixed ceiling (``Settings.worker_ceiling``)
with the Ray autoscaler on, and every bound the user can change (``replicas``,
``autoscaling``, the demand floor) lives in ``serveConfigV2``, which KubeRay
applies to the running cluster in place. Serve's autoscaler then decides the
replica count and the Ray autoscaler adds or removes a pod per replica (one
worker pod hosts one replica: its CPUs and GPUs are the replica's reservation).
Node idle timeout is fixed too, for the same reason.

The Service selects the Serve-ready pods (``ray.io/serve=true``) of the active
Ray cluster only (``ray.io/cluster``), so during an upgrade traffic stays on the
cluster that serves until KubeRay switches over.

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


def otel_env(pool: str, settings: Settings) -> list[dict[str, Any]]:
    """OpenTelemetry env of a pool's pods: OTLP export as the operator's own, service ``ponder-pool-NAME``,
    pod and namespace as resource attributes; [] while no endpoint is set."""
    if not settings.otlp_endpoint:
        return []
    attrs = ["k8s.pod.name=$(OTEL_POD_NAME)", "k8s.namespace.name=$(OTEL_POD_NAMESPACE)", f"ponder.pool={pool}"]
    if settings.pool_otel_resource_attributes:
        attrs.append(settings.pool_otel_resource_attributes)
    return [
        {"name": "OTEL_TRACES_EXPORTER", "value": "otlp"},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": settings.otlp_endpoint},
        {"name": "OTEL_EXPORTER_OTLP_INSECURE", "value": settings.otlp_insecure},
        {"name": "OTEL_SERVICE_NAME", "value": f"ponder-pool-{pool}"},
        {"name": "OTEL_TRACES_SAMPLER", "value": "parentbased_traceidratio"},
        {"name": "OTEL_TRACES_SAMPLER_ARG", "value": settings.otel_sampler_arg},
        {"name": "OTEL_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "OTEL_POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": ",".join(attrs)},
    ]


def _pod_template(
    name: str, container: str, image: str, resources: dict, settings: Settings, ports: list[dict],
    spec: ModelPoolSpec, worker: bool,
) -> dict[str, Any]:
    o = spec.pod
    env: list[dict[str, Any]] = [{"name": "PONDER_POOL", "value": name}]
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if worker and o.model_cache is not None:  # the head hosts no replica: no weights, no claim to attach
        mc = o.model_cache
        src = ({"persistentVolumeClaim": {"claimName": mc.claim_name}} if mc.claim_name
               else {"emptyDir": {"sizeLimit": mc.size}})
        volumes.append({"name": "model-cache", **src})
        mounts.append({"name": "model-cache", "mountPath": mc.mount_path})
        env += [{"name": "HF_HOME", "value": f"{mc.mount_path}/huggingface"},
                {"name": "PONDER_MODEL_CACHE", "value": mc.mount_path}]
    if worker and spec.resources.shared_memory:
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": spec.resources.shared_memory}})
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    env += otel_env(name, settings)
    env += [e.model_dump(exclude_none=True) for e in o.env]
    volumes += [v.model_dump(mode="json") for v in o.volumes]
    mounts += [m.model_dump(exclude_none=True, exclude_defaults=False) for m in o.volumeMounts]
    c: dict[str, Any] = {
        "name": container,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
        "resources": resources,
        "ports": copy.deepcopy(ports),
        "env": env,
        "securityContext": copy.deepcopy(_CONTAINER_SECURITY),
    }
    if o.envFrom:
        c["envFrom"] = copy.deepcopy(o.envFrom)
    if mounts:
        c["volumeMounts"] = mounts
    pod: dict[str, Any] = {"containers": [c], "securityContext": copy.deepcopy(_POD_SECURITY)}
    if volumes:
        pod["volumes"] = volumes
    if o.serviceAccountName:
        pod["serviceAccountName"] = o.serviceAccountName
    if settings.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in settings.image_pull_secrets]
    if worker:
        if spec.node_selector:
            pod["nodeSelector"] = dict(spec.node_selector)
        if spec.tolerations:
            pod["tolerations"] = [t.model_dump(exclude_none=True) for t in spec.tolerations]
    return {"metadata": {"labels": names.pool_labels(name)}, "spec": pod}


def rayservice(name: str, namespace: str, spec: ModelPoolSpec, settings: Settings, floor: int | None = None,
               generation: int | None = None) -> dict:
    """The pool's RayService manifest (no owner reference; the handler adopts it).

    ``generation`` (the ModelPool's) is recorded in an annotation so that status
    can tell whether the running RayService reflects the current spec.
    """
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
    annotations = {} if generation is None else {names.POOL_GENERATION: str(generation)}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": names.rayservice_name(name), "namespace": namespace, "labels": names.pool_labels(name),
                     "annotations": annotations},
        "spec": {
            "serveConfigV2": yaml.safe_dump(serve_config(name, namespace, spec, settings, floor), sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": spec.ray_version,
                "enableInTreeAutoscaling": True,
                "autoscalerOptions": {"upscalingMode": "Default", "idleTimeoutSeconds": settings.node_idle_timeout_s},
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                    "template": _pod_template(name, "ray-head", image, head_resources, settings, head_ports, spec, False),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "pool",
                        "replicas": 0,
                        "minReplicas": 0,
                        "maxReplicas": settings.worker_ceiling,
                        "rayStartParams": {},
                        "template": _pod_template(name, "ray-worker", image, worker_resources, settings, serve_ports,
                                                  spec, True),
                    }
                ],
            },
        },
    }


def service(name: str, namespace: str, settings: Settings, active_cluster: str | None = None) -> dict:
    """ClusterIP Service for the pool's Serve gRPC (and HTTP) proxies of the active
    Ray cluster (``activeServiceStatus.rayClusterName``); before any cluster is
    active it selects no pod."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names.service_name(name), "namespace": namespace, "labels": names.pool_labels(name)},
        "spec": {
            "type": "ClusterIP",
            "selector": {names.POOL_LABEL: name, "ray.io/serve": "true", "ray.io/cluster": active_cluster or ""},
            "ports": [
                {"name": "grpc", "port": settings.pool_grpc_port, "targetPort": settings.pool_grpc_port, "appProtocol": "grpc"},
                {"name": "http", "port": settings.pool_http_port, "targetPort": settings.pool_http_port},
            ],
        },
    }


def active_cluster(rayservice: dict | None) -> str | None:
    """Name of the RayCluster that serves traffic, from the RayService status (None: none yet)."""
    status = (rayservice or {}).get("status") or {}
    return (status.get("activeServiceStatus") or {}).get("rayClusterName") or None


def children(name: str, namespace: str, spec: Any, settings: Settings, floor: int | None = None,
             generation: int | None = None, active: str | None = None) -> list[dict]:
    """Validate the spec and render every child of the ModelPool (RayService first)."""
    parsed = parse_spec(name, spec)
    return [rayservice(name, namespace, parsed, settings, floor, generation), service(name, namespace, settings, active)]
