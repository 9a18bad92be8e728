"""End to end on a real cluster: install the chart, apply a CPU ModelPool and a
RoutingPolicy, send a gRPC request through the router, scale, uninstall.

Needs KUBECONFIG, `helm` and `kubectl` on PATH, KubeRay >= 1.3 installed and the
ponder images loadable by the cluster (docs/kubernetes.md shows the kind steps).
Set PONDER_E2E_IMAGE_REGISTRY / PONDER_E2E_IMAGE_TAG to the images you built.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import subprocess
import time
import uuid

import pytest

if not os.environ.get("KUBECONFIG"):
    pytest.skip("needs a Kubernetes cluster (set KUBECONFIG)", allow_module_level=True)

pytestmark = pytest.mark.e2e

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "ponder"
NS = f"ponder-e2e-{uuid.uuid4().hex[:6]}"
RELEASE = "e2e"
POOL = """
apiVersion: ponder.dev/v1alpha1
kind: ModelPool
metadata: {name: small}
spec:
  tier: small
  backend: {kind: sim, ttft_ms: 5, tpot_ms: 1, output_tokens: 8}
  replicas: {min: 1, max: 2}
  autoscaling: {target: 2, upscale_delay_s: 5, downscale_delay_s: 60}
  resources: {cpu: "1", memory: 2Gi}
"""
POLICY = """
apiVersion: ponder.dev/v1alpha1
kind: RoutingPolicy
metadata: {name: e2e}
spec:
  tiers: {small: [small]}
  strategies: [single]
  fallback_pool: small
"""


def sh(*args: str, stdin: str | None = None, timeout: float = 600) -> str:
    return subprocess.run(args, input=stdin, text=True, capture_output=True, check=True, timeout=timeout).stdout


def wait(check, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except subprocess.CalledProcessError as e:
            last = e.stderr
        time.sleep(5)
    raise AssertionError(f"timed out waiting for {what}: {last}")


@pytest.fixture(scope="module")
def release():
    for tool in ("helm", "kubectl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not on PATH")
    registry = os.environ.get("PONDER_E2E_IMAGE_REGISTRY", "ponder.local")
    tag = os.environ.get("PONDER_E2E_IMAGE_TAG", "dev")
    sh("helm", "install", RELEASE, str(CHART), "--namespace", NS, "--create-namespace", "--wait=false",
       "-f", str(CHART / "examples" / "values-cpu-demo.yaml"),
       "--set", f"imageRegistry={registry}", "--set", f"router.image.tag={tag}",
       "--set", f"operator.image.tag={tag}", "--set", f"operator.poolImages.cpu.tag={tag}",
       "--set", "pools=null", "--set", "routingPolicy.enabled=false", "--set", "consolidationPolicies=null",
       "--set", "imagePullPolicy=IfNotPresent")
    try:
        yield NS
    finally:
        subprocess.run(["helm", "uninstall", RELEASE, "--namespace", NS, "--wait"], check=False, timeout=600)
        subprocess.run(["kubectl", "delete", "namespace", NS, "--wait=false"], check=False, timeout=120)


def _ready(kind: str, name: str) -> bool:
    obj = json.loads(sh("kubectl", "-n", NS, "get", kind, name, "-o", "json"))
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def test_pool_policy_request_scale(release):
    sh("kubectl", "-n", NS, "apply", "-f", "-", stdin=POOL + "---" + POLICY)
    wait(lambda: _ready("routingpolicy", "e2e"), 300, "RoutingPolicy Ready")
    wait(lambda: _ready("modelpool", "small"), 900, "ModelPool Ready")
    sh("kubectl", "-n", NS, "rollout", "status", f"deployment/{RELEASE}-ponder-router", "--timeout=600s")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pf = subprocess.Popen(["kubectl", "-n", NS, "port-forward", f"svc/{RELEASE}-ponder-router", f"{port}:50051"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        from ponder.v1 import router_pb2, router_pb2_grpc

        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        wait(lambda: health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
             == health_pb2.HealthCheckResponse.SERVING, 120, "router SERVING")
        stub = router_pb2_grpc.RouterStub(channel)
        reply = stub.Generate(router_pb2.GenerateRequest(prompt="What is 2 + 2?"), timeout=120)
        assert reply.request_id
    finally:
        pf.terminate()

    # Scale: the new range must reach the Serve config the cluster runs and the Ray
    # pods, not only the RayService spec (KubeRay ignores worker-group replica edits).
    sh("kubectl", "-n", NS, "patch", "modelpool", "small", "--type", "merge", "-p",
       json.dumps({"spec": {"replicas": {"min": 2, "max": 3}}}))
    gen = json.loads(sh("kubectl", "-n", NS, "get", "modelpool", "small", "-o", "json"))["metadata"]["generation"]

    def scaled():
        import yaml

        rs = json.loads(sh("kubectl", "-n", NS, "get", "rayservice", "ponder-small", "-o", "json"))
        if rs["metadata"].get("annotations", {}).get("ponder.dev/pool-generation") != str(gen):
            return False
        serve = yaml.safe_load(rs["spec"]["serveConfigV2"])
        auto = serve["applications"][0]["deployments"][0]["autoscaling_config"]
        active = ((rs.get("status") or {}).get("activeServiceStatus") or {}).get("rayClusterName")
        pods = json.loads(sh("kubectl", "-n", NS, "get", "pods", "-l",
                             f"ray.io/cluster={active},ray.io/node-type=worker", "-o", "json"))["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        return (auto["min_replicas"], auto["max_replicas"]) == (2, 3) and len(running) >= 2 \
            and _ready("modelpool", "small")

    wait(scaled, 900, "ModelPool scaled to 2 replicas in the running cluster")


def test_uninstall_leaves_nothing(release):
    sh("helm", "uninstall", RELEASE, "--namespace", NS, "--wait", "--timeout", "10m", timeout=900)

    def gone():
        left = sh("kubectl", "-n", NS, "get", "modelpools,routingpolicies,consolidationpolicies,rayservices",
                  "-o", "name").split()
        pods = sh("kubectl", "-n", NS, "get", "pods", "-l", "ponder.dev/pool", "-o", "name").split()
        return not left and not pods

    wait(gone, 600, "no ponder object, RayService or Ray pod left")
