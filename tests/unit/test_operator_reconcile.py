"""Operator reconcile functions: manifests, owner references, status mapping,
config and invalid specs; no cluster."""
from __future__ import annotations

import datetime as dt

import kopf
import pytest
import yaml

from ponder.common.config import PonderConfig
from ponder.common.crd_models import ConsolidationPolicySpec, ModelPoolSpec, RoutingPolicySpec
from ponder_operator import modelpool, names, routing, status
from ponder_operator.kube import classify
from ponder_operator.modelpool import InvalidSpec
from ponder_operator.settings import Settings

S = Settings(namespace="ponder", cpu_image="reg/pool:1", cuda_image="reg/pool-cuda:1", redis_url="redis://r:6379/0")
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)

CPU = {"tier": "small", "backend": {"kind": "llamacpp"}, "replicas": {"min": 1, "max": 3},
       "autoscaling": {"target": 4, "upscale_delay_s": 10, "downscale_delay_s": 120}, "resources": {"cpu": "2", "memory": "3Gi"}}
GPU = {"tier": "reasoning", "backend": {"kind": "vllm", "model": "Qwen/QwQ-32B", "tensor_parallel_size": 2},
       "replicas": {"min": 0, "max": 4},
       "autoscaling": {"metric": "tokens_per_second", "target": 600, "tokens_per_second_per_request": 30,
                       "scale_to_zero": True, "downscale_to_zero_delay_s": 1800},
       "resources": {"cpu": "16", "memory": "128Gi", "gpus": 2, "shared_memory": "16Gi"},
       "node_selector": {"nvidia.com/gpu.product": "H100"},
       "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
SOFTCOT = {"tier": "softcot", "backend": {"kind": "transformers"},
           "softcot": {"assistant_model": "a", "projection_path": "s3://p"}}


def _serve(rs: dict) -> dict:
    return yaml.safe_load(rs["spec"]["serveConfigV2"])


def test_cpu_pool_rayservice_and_service():
    rs, svc = modelpool.children("small", "ns", CPU, S)
    assert rs["kind"] == "RayService" and rs["metadata"]["name"] == "ponder-small"
    serve = _serve(rs)
    app = serve["applications"][0]
    assert app["name"] == "small" and app["import_path"] == "ponder.pools.serve_app:build_app"
    assert serve["grpc_options"]["grpc_servicer_functions"] == [names.SERVICER_FUNCTION]
    pool = PonderConfig(pools=[app["args"]["pool"]]).pools[0]  # the args are a valid PoolConfig
    assert pool.name == "small" and pool.num_cpus == 2.0
    dep = app["deployments"][0]
    assert dep["name"] == "pool-small"
    assert dep["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 4.0,
                                         "upscale_delay_s": 10.0, "downscale_delay_s": 120.0}
    worker = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert (worker["minReplicas"], worker["maxReplicas"]) == (1, 3)
    c = worker["template"]["spec"]["containers"][0]
    assert c["image"] == "reg/pool:1" and c["resources"]["limits"] == {"cpu": "2", "memory": "3Gi"}
    assert rs["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert svc["spec"]["selector"] == {"ponder.dev/pool": "small", "ray.io/serve": "true"}
    assert svc["spec"]["ports"][0] == {"name": "grpc", "port": 9000, "targetPort": 9000, "appProtocol": "grpc"}


def test_gpu_pool_resources_placement_and_scale_to_zero():
    rs, _ = modelpool.children("reasoning", "ns", GPU, S)
    worker = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    pod = worker["template"]["spec"]
    c = pod["containers"][0]
    assert c["image"] == "reg/pool-cuda:1"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 2 and c["resources"]["requests"]["nvidia.com/gpu"] == 2
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "H100"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
    assert worker["minReplicas"] == 0
    auto = _serve(rs)["applications"][0]["deployments"][0]["autoscaling_config"]
    assert auto["min_replicas"] == 0 and auto["downscale_to_zero_delay_s"] == 1800
    assert auto["target_ongoing_requests"] == pytest.approx(20.0)  # 600 tok/s / 30 tok/s per request
    assert _serve(rs)["applications"][0]["deployments"][0]["ray_actor_options"]["num_gpus"] == 2.0


def test_fixed_replicas_and_queue_depth_translation():
    rs, _ = modelpool.children("fixed", "ns", {"replicas": {"min": 2, "max": 2}}, S)
    dep = _serve(rs)["applications"][0]["deployments"][0]
    assert dep["num_replicas"] == 2 and "autoscaling_config" not in dep
    spec = ModelPoolSpec.model_validate({"autoscaling": {"metric": "queue_depth", "target": 4, "concurrency_per_replica": 8}})
    assert spec.autoscaling.target_ongoing_requests() == 12


def test_softcot_args_and_difficulty_floor():
    rs, _ = modelpool.children("softcot", "ns", SOFTCOT, S)
    assert _serve(rs)["applications"][0]["args"]["softcot"]["assistant_model"] == "a"
    spec = dict(CPU, autoscaling={**CPU["autoscaling"], "demand": {"enabled": True}})
    rs, _ = modelpool.children("small", "ns", spec, S, floor=2)
    assert _serve(rs)["applications"][0]["deployments"][0]["autoscaling_config"]["min_replicas"] == 2
    rs, _ = modelpool.children("small", "ns", spec, S, floor=99)  # clamped to max
    assert rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["minReplicas"] == 3


def test_owner_references_via_kopf_adopt():
    owner = {"apiVersion": "ponder.dev/v1alpha1", "kind": "ModelPool",
             "metadata": {"name": "small", "namespace": "ns", "uid": "uid-1", "labels": {}}}
    for child in modelpool.children("small", "ns", CPU, S):
        kopf.adopt(child, owner=owner)
        ref = child["metadata"]["ownerReferences"][0]
        assert ref["uid"] == "uid-1" and ref["kind"] == "ModelPool" and ref["controller"] is True
        assert ref["blockOwnerDeletion"] is True and child["metadata"]["namespace"] == "ns"


def test_children_are_independent_copies():
    rs, _ = modelpool.children("small", "ns", CPU, S)
    head = rs["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    head["securityContext"]["runAsUser"] = 0
    worker = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
    assert worker["securityContext"]["runAsUser"] == 1000


@pytest.mark.parametrize("spec,path", [
    ({"tier": "softcot"}, "spec"),
    ({"replicas": {"min": 5, "max": 1}}, "spec.replicas"),
    ({"backend": {"kind": "vllm"}}, "spec.backend.model"),
    ({"autoscaling": {"target": -1}}, "spec.autoscaling.target"),
    ({"unknown": 1}, "spec.unknown"),
])
def test_invalid_specs(spec, path):
    with pytest.raises(InvalidSpec) as e:
        modelpool.children("p", "ns", spec, S)
    assert path in [p for p, _ in e.value.problems]
    st = status.invalid_status(3, None, str(e.value), NOW)
    ready = st["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"], ready["observedGeneration"]) == ("Ready", "False", "InvalidSpec", 3)
    assert path in ready["message"]


def _rs(app_status=None, endpoints=1, message="", pending=False):
    apps = {} if app_status is None else {"small": {"status": app_status, "message": message}}
    key = "pendingServiceStatus" if pending else "activeServiceStatus"
    return {"status": {key: {"applicationStatuses": apps}, "numServeEndpoints": endpoints}}


@pytest.mark.parametrize("rs,expected", [
    (None, ("False", "Deploying")),
    ({"status": {}}, ("False", "Deploying")),
    (_rs("RUNNING"), ("True", "Ready")),
    (_rs("RUNNING", endpoints=0), ("False", "NoEndpoints")),
    (_rs("DEPLOYING", pending=True), ("False", "Deploying")),
    (_rs("DEPLOY_FAILED", message="ImportError: no module"), ("False", "DeployFailed")),
    (_rs("UNHEALTHY"), ("False", "Unhealthy")),
])
def test_status_mapping(rs, expected):
    st = status.pool_status("small", "ns", 2, rs, None, NOW, 9000)
    ready = st["conditions"][0]
    assert (ready["status"], ready["reason"]) == expected
    assert st["observedGeneration"] == 2 and st["address"] == "ponder-pool-small.ns.svc:9000"
    if expected[1] == "DeployFailed":
        assert "ImportError" in ready["message"]


def test_condition_transition_time_kept_while_status_unchanged():
    first = status.pool_status("small", "ns", 1, _rs("DEPLOYING"), None, NOW, 9000)
    later = NOW + dt.timedelta(minutes=5)
    same = status.pool_status("small", "ns", 1, _rs("DEPLOYING"), first, later, 9000)
    assert same["conditions"][0]["lastTransitionTime"] == "2025-01-01T00:00:00Z"
    ready = status.pool_status("small", "ns", 1, _rs("RUNNING"), same, later, 9000)
    assert ready["conditions"][0]["lastTransitionTime"] == "2025-01-01T00:05:00Z"


def _state(**routing_spec):
    st = routing.NamespaceState("ns")
    st.pools["small"] = ModelPoolSpec.model_validate(CPU)
    st.pools["reasoning"] = ModelPoolSpec.model_validate(GPU)
    st.routing.append(("2025-01-02T00:00:00Z", "newer", RoutingPolicySpec()))
    st.routing.append(("2025-01-01T00:00:00Z", "main", RoutingPolicySpec.model_validate(routing_spec)))
    return st


def test_config_map_from_policies():
    st = _state(tiers={"small": ["small"], "reasoning": ["reasoning"]}, fallback_pool="small",
                budget={"target_cu_per_request": 100, "max_cu_per_request": 1000})
    st.consolidation["nightly"] = ConsolidationPolicySpec(pool="small")
    st.consolidation["orphan"] = ConsolidationPolicySpec(pool="gone")
    cm = routing.config_map(st, S)
    assert cm["metadata"]["name"] == "ponder-config" and cm["metadata"]["labels"]["ponder.dev/routing-policy"] == "main"
    cfg = PonderConfig.model_validate(yaml.safe_load(cm["data"]["ponder.yaml"]))
    assert cfg.pool_names == ["reasoning", "small"]
    assert cfg.pool("small").address == "ponder-pool-small.ns.svc:9000"
    assert cfg.routing.fallback_pool == "small" and cfg.routing.budget.target_cu_per_request == 100
    assert cfg.router.host == "0.0.0.0" and cfg.redis.url == "redis://r:6379/0"
    cons = yaml.safe_load(cm["data"]["consolidation.yaml"])
    assert [p["name"] for p in cons["policies"]] == ["nightly"]
    assert routing.consolidation_doc(st)[1] == {"orphan": ["gone"]}


def test_config_map_missing_pools_and_empty_namespace():
    with pytest.raises(routing.MissingPools, match="nope"):
        routing.config_map(_state(tiers={"small": ["nope"]}), S)
    assert routing.config_map(routing.NamespaceState("ns"), S) is None


@pytest.mark.parametrize("code,outcome", [
    (409, ("temporary", 2.0)), (429, ("temporary", 10.0)), (500, ("temporary", 15.0)), (None, ("temporary", 15.0)),
    (404, ("temporary", 60.0)), (422, ("permanent", None)), (400, ("permanent", None)),
])
def test_api_error_classification(code, outcome):
    assert classify(code) == outcome
