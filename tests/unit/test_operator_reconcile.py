"""Operator reconcile functions: manifests, owner references, status mapping,
config and invalid specs; no cluster."""
from __future__ import annotations

import datetime as dt

import pytest
import yaml

from ponder.common.config import PonderConfig
from ponder.common.crd_models import ConsolidationPolicySpec, ModelPoolSpec, RoutingPolicySpec
from ponder_operator import modelpool, names, routing, status
from ponder_operator.kube import classify, covers
from ponder_operator.modelpool import InvalidSpec
from ponder_operator.settings import Settings

S = Settings(namespace="ponder", cpu_image="reg/pool:1", cuda_image="reg/pool-cuda:1", outcome_maxlen=5000)
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
    assert (worker["replicas"], worker["minReplicas"], worker["maxReplicas"]) == (0, 0, S.worker_ceiling)
    c = worker["template"]["spec"]["containers"][0]
    assert c["image"] == "reg/pool:1" and c["resources"]["limits"] == {"cpu": "2", "memory": "3Gi"}
    assert rs["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert svc["spec"]["selector"] == {"ponder.dev/pool": "small", "ray.io/serve": "true", "ray.io/cluster": ""}
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
    assert _serve(rs)["applications"][0]["deployments"][0]["autoscaling_config"]["min_replicas"] == 3


# What KubeRay (1.3-1.6) leaves out of the hash that decides on a new cluster, and so
# never applies to a running RayService: the worker groups' replica fields.
_UNHASHED = ("replicas", "minReplicas", "maxReplicas")


def _cluster(rs: dict) -> dict:
    return rs["spec"]["rayClusterConfig"]


@pytest.mark.parametrize("change", [
    {"replicas": {"min": 2, "max": 6}},
    {"replicas": {"min": 0, "max": 1}, "autoscaling": {**CPU["autoscaling"], "scale_to_zero": True}},
    {"autoscaling": {**CPU["autoscaling"], "downscale_delay_s": 900, "target": 8}},
])
def test_changed_range_reaches_the_serve_config_not_the_unhashed_fields(change):
    before, _ = modelpool.children("small", "ns", CPU, S)
    after, _ = modelpool.children("small", "ns", {**CPU, **change}, S)
    assert _cluster(after) == _cluster(before)  # nothing KubeRay would ignore, and no new cluster
    auto = _serve(after)["applications"][0]["deployments"][0]["autoscaling_config"]
    want = ModelPoolSpec.model_validate({**CPU, **change})
    assert (auto["min_replicas"], auto["max_replicas"]) == (want.replicas.min, want.replicas.max)
    assert auto["downscale_delay_s"] == want.autoscaling.downscale_delay_s
    assert _serve(after) != _serve(before)


def test_demand_floor_reaches_the_serve_config_only():
    spec = dict(CPU, autoscaling={**CPU["autoscaling"], "demand": {"enabled": True}})
    low, _ = modelpool.children("small", "ns", spec, S, floor=1)
    high, _ = modelpool.children("small", "ns", spec, S, floor=3)
    assert _cluster(low) == _cluster(high)
    for rs, floor in ((low, 1), (high, 3)):
        assert _serve(rs)["applications"][0]["deployments"][0]["autoscaling_config"]["min_replicas"] == floor
        worker = _cluster(rs)["workerGroupSpecs"][0]
        assert {k: worker[k] for k in _UNHASHED} == {"replicas": 0, "minReplicas": 0, "maxReplicas": S.worker_ceiling}


def test_rayservice_records_pool_generation():
    rs, _ = modelpool.children("small", "ns", CPU, S, generation=7)
    assert rs["metadata"]["annotations"] == {names.POOL_GENERATION: "7"}


def test_pod_overrides_on_head_and_workers():
    spec = dict(GPU, pod={
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}],
        "envFrom": [{"secretRef": {"name": "openai-key"}}],
        "serviceAccountName": "models-reader",
        "volumes": [{"name": "certs", "secret": {"secretName": "ca"}}],
        "volumeMounts": [{"name": "certs", "mountPath": "/etc/ssl/ponder", "readOnly": True}],
        "model_cache": {"claim_name": "models", "mount_path": "/models"},
    })
    rs, _ = modelpool.children("reasoning", "ns", spec, S)
    head = _cluster(rs)["headGroupSpec"]["template"]["spec"]
    worker = _cluster(rs)["workerGroupSpecs"][0]["template"]["spec"]
    for pod in (head, worker):
        c = pod["containers"][0]
        env = {e["name"]: e for e in c["env"]}
        assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "hf" and env["PONDER_POOL"]["value"] == "reasoning"
        assert c["envFrom"] == [{"secretRef": {"name": "openai-key"}}]
        assert pod["serviceAccountName"] == "models-reader"
        vols = {v["name"]: v for v in pod["volumes"]}
        assert vols["certs"]["secret"] == {"secretName": "ca"}
        assert {m["name"]: m["mountPath"] for m in c["volumeMounts"]}["certs"] == "/etc/ssl/ponder"
    wc = worker["containers"][0]
    assert {e["name"]: e.get("value") for e in wc["env"]}["HF_HOME"] == "/models/huggingface"
    assert {v["name"]: v for v in worker["volumes"]}["model-cache"] == {
        "name": "model-cache", "persistentVolumeClaim": {"claimName": "models"}}
    assert {m["name"]: m["mountPath"] for m in wc["volumeMounts"]}["model-cache"] == "/models"
    head_vols = {v["name"] for v in head["volumes"]}
    assert "model-cache" not in head_vols and "dshm" not in head_vols  # a ReadWriteOnce claim attaches once
    assert "dshm" in {v["name"] for v in worker["volumes"]}
    assert "nodeSelector" in worker and "nodeSelector" not in head


@pytest.mark.parametrize("pod,needle", [
    ({"volumeMounts": [{"name": "x", "mountPath": "/x"}]}, "pod.volumes lacks"),
    ({"volumes": [{"name": "dshm", "emptyDir": {}}]}, "unique and not"),
    ({"volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]}, "unique and not"),
])
def test_pod_overrides_refused(pod, needle):
    with pytest.raises(InvalidSpec, match=needle):
        modelpool.children("p", "ns", dict(CPU, pod=pod), S)


def test_service_follows_the_active_cluster():
    rs = _rs("RUNNING")
    rs["status"]["activeServiceStatus"]["rayClusterName"] = "ponder-small-abc12"
    svc = modelpool.service("small", "ns", S, modelpool.active_cluster(rs))
    assert svc["spec"]["selector"]["ray.io/cluster"] == "ponder-small-abc12"
    assert modelpool.active_cluster({"status": {"pendingServiceStatus": {"rayClusterName": "x"}}}) is None


def test_children_are_independent_copies():
    rs, _ = modelpool.children("small", "ns", CPU, S)
    head = rs["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    head["securityContext"]["runAsUser"] = 0
    worker = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
    assert worker["securityContext"]["runAsUser"] == 1000


@pytest.mark.parametrize("spec,path", [
    ({"tier": "softcot"}, "spec"),
    ({"replicas": {"min": 5, "max": 1}}, "spec.replicas"),
    ({"name": "other"}, "spec"),
    ({"autoscaling": {"scale_to_zero": True, "downscale_to_zero_delay_s": 60}, "replicas": {"min": 0, "max": 1},
      "ray_version": "2.40.0"}, "spec"),
    ({"backend": {"kind": "vllm"}}, "spec.backend.model"),
    ({"autoscaling": {"target": -1}}, "spec.autoscaling.target"),
    ({"unknown": 1}, "spec.unknown"),
])
def test_invalid_specs(spec, path):
    with pytest.raises(InvalidSpec) as e:
        modelpool.children("p", "ns", spec, S)
    assert path in [p for p, _ in e.value.problems]
    st = status.reconciled_status(3, None, NOW, "InvalidSpec", str(e.value))
    conds = {c["type"]: c for c in st["conditions"]}
    for t in ("Reconciled", "Ready"):
        assert (conds[t]["status"], conds[t]["reason"], conds[t]["observedGeneration"]) == ("False", "InvalidSpec", 3)
        assert path in conds[t]["message"]


def _rs(app_status=None, endpoints=1, message="", pending=False, pool_gen=2, rs_gen=1, seen=1):
    apps = {} if app_status is None else {"small": {"status": app_status, "message": message}}
    key = "pendingServiceStatus" if pending else "activeServiceStatus"
    return {"metadata": {"generation": rs_gen, "annotations": {names.POOL_GENERATION: str(pool_gen)}},
            "status": {key: {"applicationStatuses": apps}, "numServeEndpoints": endpoints, "observedGeneration": seen}}


def _ready(st: dict) -> dict:
    return status.find(st["conditions"], "Ready")


@pytest.mark.parametrize("rs,expected", [
    (None, ("False", "Deploying")),
    ({"metadata": {"annotations": {names.POOL_GENERATION: "2"}}, "status": {}}, ("False", "Deploying")),
    (_rs("RUNNING"), ("True", "Ready")),
    (_rs("RUNNING", endpoints=0), ("False", "NoEndpoints")),
    (_rs("DEPLOYING", pending=True), ("False", "Deploying")),
    (_rs("RUNNING", pending=True), ("False", "Deploying")),
    (_rs("DEPLOY_FAILED", message="ImportError: no module"), ("False", "DeployFailed")),
    (_rs("UNHEALTHY"), ("False", "Unhealthy")),
    (_rs("RUNNING", pool_gen=1), ("False", "Updating")),
    (_rs("RUNNING", rs_gen=2, seen=1), ("False", "Updating")),
])
def test_status_mapping(rs, expected):
    st = status.observed_status("small", "ns", 2, rs, None, NOW, 9000)
    ready = _ready(st)
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (*expected, 2)
    assert st["address"] == "ponder-pool-small.ns.svc:9000" and "observedGeneration" not in st
    if expected[1] == "DeployFailed":
        assert "ImportError" in ready["message"]


def test_update_replayed_ready_false_until_the_new_generation_is_observed():
    """ModelPool generation 2 -> 3; the RayService statuses KubeRay reports, in order."""
    running_v2 = _rs("RUNNING", pool_gen=2, rs_gen=5, seen=5)
    replay = [
        (running_v2, 2, "True"),                            # serving generation 2
        (running_v2, 3, "False"),                           # spec 3 reconciled, RayService not yet rewritten
        (_rs("RUNNING", pool_gen=3, rs_gen=6, seen=5), 3, "False"),    # rewritten, KubeRay has not observed it
        (_rs("DEPLOYING", pool_gen=3, rs_gen=6, seen=6), 3, "False"),  # observed, new app deploying
        (_rs("RUNNING", pool_gen=3, rs_gen=6, seen=6, endpoints=0), 3, "False"),
        (_rs("RUNNING", pool_gen=3, rs_gen=6, seen=6), 3, "True"),
    ]
    old: dict = {}
    for i, (rs, gen, want) in enumerate(replay):
        old = {**old, **status.observed_status("small", "ns", gen, rs, old, NOW + dt.timedelta(seconds=i), 9000)}
        assert _ready(old)["status"] == want, (i, _ready(old))
        assert _ready(old)["observedGeneration"] == gen
    assert [c["type"] for c in old["conditions"]] == ["Ready"]


def test_failed_reconcile_is_not_overwritten_by_the_old_rayservice():
    rec = status.reconciled_status(4, None, NOW, "ApiError", "RayService ponder-small: API error 500")
    st = status.observed_status("small", "ns", 4, _rs("RUNNING", pool_gen=4, rs_gen=1, seen=1), rec, NOW, 9000)
    assert (_ready(st)["status"], _ready(st)["reason"]) == ("False", "ApiError")
    ok = status.reconciled_status(5, {**rec, **st}, NOW)
    assert status.find(ok["conditions"], "Reconciled")["status"] == "True" and ok["observedGeneration"] == 5
    st = status.observed_status("small", "ns", 5, _rs("RUNNING", pool_gen=5), {**rec, **st, **ok}, NOW, 9000)
    assert _ready(st)["status"] == "True"


def test_condition_transition_time_kept_while_status_unchanged():
    first = status.observed_status("small", "ns", 2, _rs("DEPLOYING"), None, NOW, 9000)
    later = NOW + dt.timedelta(minutes=5)
    same = status.observed_status("small", "ns", 2, _rs("DEPLOYING"), first, later, 9000)
    assert _ready(same)["lastTransitionTime"] == "2025-01-01T00:00:00Z"
    ready = status.observed_status("small", "ns", 2, _rs("RUNNING"), same, later, 9000)
    assert _ready(ready)["lastTransitionTime"] == "2025-01-01T00:05:00Z"


@pytest.mark.parametrize("live,desired,same", [
    ({"a": 1, "default": "x"}, {"a": 1}, True),                 # server defaults ignored
    ({"a": {"b": [1, {"c": 2, "d": 3}]}}, {"a": {"b": [1, {"c": 2}]}}, True),
    ({"a": 1}, {"a": 2}, False),
    ({"a": [1, 2]}, {"a": [1]}, False),                          # a removed list entry is a change
    ({}, {"a": None}, False),
    ({"a": 2.0}, {"a": 2}, True),
])
def test_covers(live, desired, same):
    assert covers(live, desired) is same


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
    assert cfg.router.host == "0.0.0.0" and cfg.redis.url is None and cfg.redis.outcome_maxlen == 5000
    assert "redis://" not in cm["data"]["ponder.yaml"]  # the URL holds the password: env only
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


def test_modelpool_spec_is_pool_config_and_round_trips():
    """Every field ModelPoolSpec shares with PoolConfig (softcot too, once PoolConfig declares
    it) reaches the pool config unchanged; the hidden ones are derived, not declared twice."""
    from ponder.common.config import PoolConfig

    assert issubclass(ModelPoolSpec, PoolConfig)
    spec = ModelPoolSpec.model_validate({
        **SOFTCOT, "cost": {"prompt_token_cu": 0.3, "output_token_cu": 2.5}, "thinking": {"budget_tokens": 77},
        "speed": {"ttft_ms": 9, "decode_tokens_per_s": 99}, "max_tokens_default": 11, "max_tokens_limit": 222,
        "max_queued_requests": 33, "replicas": {"min": 2, "max": 5}, "resources": {"cpu": "3", "gpus": 1},
        "autoscaling": {"target": 7},
    })
    pool = spec.to_pool_config("sc", address="a:1")
    shared = (set(PoolConfig.model_fields) & set(ModelPoolSpec.model_fields)) - {"name", "address", "num_cpus",
                                                                                   "num_gpus", "replicas"}
    assert {"tier", "backend", "cost", "thinking", "speed", "max_tokens_limit"} <= shared
    for f in shared:
        assert getattr(pool, f) == getattr(spec, f), f
    assert (pool.name, pool.address, pool.num_cpus, pool.num_gpus) == ("sc", "a:1", 3.0, 1.0)
    assert (pool.replicas.min, pool.replicas.max, pool.replicas.target_ongoing_requests) == (2, 5, 7.0)
    crd_fields = set(ModelPoolSpec.model_json_schema()["properties"])
    assert not {"name", "address", "num_cpus", "num_gpus"} & crd_fields and "softcot" in crd_fields
    rs, _ = modelpool.children("sc", "ns", spec.model_dump(mode="json", exclude_none=True), S)
    args = _serve(rs)["applications"][0]["args"]
    assert args["softcot"] == spec.softcot.model_dump(mode="json")  # reaches the Serve application
