"""Difficulty-aware scaling, leader election and the handlers, with an in-memory API."""
from __future__ import annotations

import datetime as dt

import kopf
import pytest

from ponder.common.crd_models import ModelPoolSpec
from ponder_operator import demand, handlers, leader, names
from ponder_operator.settings import Settings

SPEC = ModelPoolSpec.model_validate({
    "replicas": {"min": 1, "max": 10},
    "autoscaling": {"downscale_delay_s": 300,
                    "demand": {"enabled": True, "replica_capacity_cu_per_s": 100, "headroom": 1.0, "lookahead_s": 60}},
})
TO_ZERO = ModelPoolSpec.model_validate({
    "replicas": {"min": 0, "max": 4},
    "autoscaling": {"scale_to_zero": True, "downscale_delay_s": 900,
                    "demand": {"enabled": True, "replica_capacity_cu_per_s": 12000, "headroom": 1.3,
                               "lookahead_s": 180, "dead_band": 0.05}},
})

EXPOSITION = """# HELP ponder_router_planned_compute_units_per_second Planned compute units per second
# TYPE ponder_router_planned_compute_units_per_second gauge
ponder_router_planned_compute_units_per_second{pool="small",tier="small"} 120.5
ponder_router_planned_compute_units_per_second{pool="reasoning",tier="reasoning"} 900
ponder_router_planned_compute_units_per_second{pool="small",tier="small",namespace="team-b"} 7
ponder_router_planned_compute_units_per_second{pool="broken",tier="small"} NaN
other_metric{pool="small"} 5
"""


def test_parse_demand_sums_router_replicas_per_namespace():
    got = demand.parse_demand([EXPOSITION, EXPOSITION], namespace="ponder")
    assert got == {("ponder", "small"): 241.0, ("ponder", "reasoning"): 1800.0, ("team-b", "small"): 14.0}
    assert demand.parse_demand(["garbage {{{"]) == {}


def test_floor_rises_at_once_within_bounds():
    f = demand.next_floor(SPEC, 350.0, now=1000.0, prev=None)
    assert (f.floor, f.raised_at) == (4, 1000.0)
    assert demand.next_floor(SPEC, 1e9, now=1001.0, prev=f).floor == 10
    assert demand.next_floor(SPEC, 0.0, now=1000.0, prev=None).floor == 1


def test_floor_rises_ahead_of_a_rising_trend():
    prev = demand.Floor(2, 200.0, 0.0, None)
    f = demand.next_floor(SPEC, 300.0, now=30.0, prev=prev)  # +100 cu/s in 30 s; 60 s ahead: 500
    assert f.floor == 5


def test_floor_falls_only_after_downscale_delay():
    raised = demand.Floor(6, 600.0, 100.0, 100.0)
    hold = demand.next_floor(SPEC, 100.0, now=200.0, prev=raised)
    assert hold.floor == 6
    fall = demand.next_floor(SPEC, 100.0, now=401.0, prev=hold)
    assert fall.floor == 1


def test_decaying_demand_reaches_zero_through_the_dead_band():
    """One large plan, then silence: the router's 60 s exponentially weighted rate decays
    but never reaches 0; the floor of a scale-to-zero pool still returns to 0."""
    import math

    status: dict = {}
    rate = 20000.0
    floors = []
    for t in range(0, 3600 * 3, 30):
        render, floor, patch = demand.step(TO_ZERO, status, rate, float(t))
        status.update(patch)
        floors.append(floor)
        rate *= math.exp(-30 / 60)
    assert max(floors) >= 1 and rate > 0
    zero_at = 30 * floors.index(0, floors.index(max(floors)))
    assert floors[-1] == 0 and zero_at <= 900 + 30 * 12  # the downscale delay plus a few minutes of decay


def test_floor_cleared_when_demand_scaling_is_turned_off():
    status: dict = {}
    _, _, patch = demand.step(SPEC, status, 550.0, 0.0)
    status.update(patch)
    assert status["replicasFloor"] == 6 and demand.floor_for(SPEC, status) == 6
    off = SPEC.model_copy(update={"autoscaling": SPEC.autoscaling.model_copy(
        update={"demand": SPEC.autoscaling.demand.model_copy(update={"enabled": False})})})
    assert demand.floor_for(off, status) is None  # a reconcile no longer applies it
    render, floor, patch = demand.step(off, status, 550.0, 10.0)
    assert (render, floor) == (True, None) and patch["replicasFloor"] is None
    status.update(patch)
    assert demand.step(off, status, 550.0, 20.0) == (False, None, {})


def test_router_unreachable_keeps_the_floor():
    status: dict = {}
    status.update(demand.step(SPEC, status, 550.0, 0.0)[2])
    assert demand.step(SPEC, status, None, 30.0) == (False, 6, {})


T0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def _lease(holder: str, renew: dt.datetime, transitions: int = 0) -> dict:
    return {"holderIdentity": holder, "leaseDurationSeconds": 15, "acquireTime": leader._ts(T0),
            "renewTime": leader._ts(renew), "leaseTransitions": transitions}


def test_leader_decisions():
    d = leader.decide(None, "a", T0, 15)
    assert d.action == "create" and d.spec["holderIdentity"] == "a"
    held = d.spec
    renew = leader.decide(held, "a", T0 + dt.timedelta(seconds=10), 15)
    assert renew.action == "renew" and renew.spec["renewTime"].startswith("2025-01-01T00:00:10")
    assert leader.decide({"holderIdentity": ""}, "b", T0, 15).action == "acquire"
    seen = leader.observe(None, held, 100.0)
    assert leader.decide(held, "b", T0, 15, seen, 114.9).action == "wait"
    take = leader.decide(held, "b", T0, 15, seen, 115.0)
    assert take.action == "acquire" and take.spec["holderIdentity"] == "b" and take.spec["leaseTransitions"] == 1


def test_expiry_is_judged_by_local_observation_not_the_holders_clock():
    # The holder's clock runs an hour behind: its renewTime looks long expired to b.
    stale_clock = _lease("a", T0 - dt.timedelta(hours=1))
    seen = leader.observe(None, stale_clock, 0.0)
    assert leader.decide(stale_clock, "b", T0, 15, seen, 5.0).action == "wait"
    renewed = _lease("a", T0 - dt.timedelta(hours=1) + dt.timedelta(seconds=2))
    seen = leader.observe(seen, renewed, 14.0)  # a renewal seen at local 14 s restarts the clock
    assert seen.at_s == 14.0
    assert leader.decide(renewed, "b", T0, 15, seen, 28.0).action == "wait"
    assert leader.decide(renewed, "b", T0, 15, seen, 29.0).action == "acquire"
    # The holder's clock runs ahead: a renewTime in the future does not keep a dead holder.
    future = _lease("a", T0 + dt.timedelta(hours=1))
    seen = leader.observe(None, future, 0.0)
    assert leader.decide(future, "b", T0, 15, seen, 15.0).action == "acquire"
    # Never observed before: wait a full lease duration first.
    assert leader.decide(future, "b", T0, 15, None, 1e9).action == "wait"


class FakeLeases:
    """In-memory Lease API with resourceVersion conflicts, like the API server."""

    def __init__(self):
        self.obj = None
        self.version = 0
        self.timeouts: list = []
        self.down = False

    def _call(self, kw):
        from kubernetes.client.exceptions import ApiException

        self.timeouts.append(kw.get("_request_timeout"))
        if self.down:
            raise ApiException(status=503)

    def read_namespaced_lease(self, name, ns, **kw):
        from kubernetes.client import V1Lease, V1LeaseSpec, V1ObjectMeta
        from kubernetes.client.exceptions import ApiException

        self._call(kw)
        if self.obj is None:
            raise ApiException(status=404)
        spec = self.obj["spec"]
        return V1Lease(metadata=V1ObjectMeta(name=name, resource_version=str(self.version)), spec=V1LeaseSpec(
            holder_identity=spec["holderIdentity"], lease_duration_seconds=spec["leaseDurationSeconds"],
            renew_time=dt.datetime.strptime(spec["renewTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc),
            lease_transitions=spec["leaseTransitions"]))

    def create_namespaced_lease(self, ns, body, **kw):
        from kubernetes.client.exceptions import ApiException

        self._call(kw)
        if self.obj is not None:
            raise ApiException(status=409)
        self.obj, self.version = body, self.version + 1

    def replace_namespaced_lease(self, name, ns, body, **kw):
        from kubernetes.client.exceptions import ApiException

        self._call(kw)
        if body["metadata"]["resourceVersion"] != str(self.version):
            raise ApiException(status=409)
        self.obj, self.version = body, self.version + 1


def test_two_replicas_one_leader():
    api = FakeLeases()
    clock = {"t": T0, "a": 0.0, "b": 500.0}  # each candidate has its own monotonic clock
    a = leader.LeaseElector(api, "ns", "l", "a", 15, clock=lambda: clock["t"], monotonic=lambda: clock["a"])
    b = leader.LeaseElector(api, "ns", "l", "b", 15, clock=lambda: clock["t"], monotonic=lambda: clock["b"])

    def tick(s: float):
        clock["t"] += dt.timedelta(seconds=s)
        clock["a"] += s
        clock["b"] += s

    assert a.try_once() and not b.try_once()
    tick(5)
    assert a.try_once() and not b.try_once()
    tick(14)  # a stopped renewing 14 s ago (b's view)
    assert not b.try_once()
    tick(1)
    assert b.try_once() and not a.try_once()
    assert api.obj["spec"]["holderIdentity"] == "b" and api.obj["spec"]["leaseTransitions"] == 1
    assert api.timeouts and all(t == 5.0 for t in api.timeouts)  # every call had a timeout


async def test_leader_survives_one_failed_renewal_and_stops_before_the_lease_ends():
    import asyncio

    api = FakeLeases()
    now = {"s": 0.0}
    el = leader.LeaseElector(api, "ns", "l", "a", 15, period_s=0.01, monotonic=lambda: now["s"])
    assert el.renew_deadline_s == 10 and el.try_once()
    assert not el.holding_lost(0.0)
    api.down = True
    now["s"] = 2.0
    assert not el._safe_try() and not el.holding_lost(0.0)  # one failed renewal: still leading
    api.down = False
    now["s"] = 4.0
    assert el._safe_try()
    api.down = True
    now["s"] = 14.0
    assert el.holding_lost(4.0)  # 10 s without a renewal: stop, 5 s before others may take over
    lost = asyncio.Event()
    ticks = iter(range(100, 10_000))  # each reading of the clock: one more second
    el.monotonic = lambda: float(next(ticks))
    await asyncio.wait_for(el.keep(lost), 2)
    assert lost.is_set() and next(ticks) - 100 <= 15  # gave up after ~10 s of failures
    with pytest.raises(ValueError, match="renew deadline"):
        leader.LeaseElector(api, "ns", "l", "a", 15, period_s=12)


@pytest.mark.parametrize("argv,deadline", [
    (["--namespace", "a", "--no-leader-election"], 10.0),
    (["-A", "--lease-duration-s", "30", "--renew-deadline-s", "20"], 20.0),
])
def test_operator_cli(argv, deadline):
    from ponder_operator.__main__ import parse_args

    args = parse_args(argv)
    assert args.renew_deadline_s == deadline


@pytest.mark.parametrize("argv", [[], ["-A", "--renew-deadline-s", "15"], ["-A", "--renew-period-s", "11"]])
def test_operator_cli_refuses(argv):
    from ponder_operator.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(argv)


def test_settings_from_env():
    s = Settings.from_env({"PONDER_NAMESPACE": "x", "PONDER_IMAGE_PULL_SECRETS": "a,b", "PONDER_ROUTER_PORT": "1",
                           "PONDER_WATCH_NAMESPACES": "p,q"})
    assert (s.namespace, s.image_pull_secrets, s.router_port, s.watch_namespaces) == ("x", ("a", "b"), 1, ("p", "q"))


# ----------------------------------------------------------------- handlers on an in-memory API
class FakeKube:
    """The ``Kube`` calls the handlers make, on dicts in memory."""

    def __init__(self, pools: list[dict], metrics: list[str] | None = None):
        self.pools = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pools}
        self.rayservices: dict[tuple[str, str], dict] = {}
        self.services: dict[tuple[str, str], dict] = {}
        self.metrics = metrics
        self.patches: list[tuple[str, str, dict]] = []

    def list_ponder(self, ns, plural):
        return [p for (n, _), p in self.pools.items() if ns is None or n == ns]

    def get_ponder(self, ns, plural, name):
        return self.pools.get((ns, name))

    def router_metrics(self, ns, service, port):
        if self.metrics is None:
            raise OSError("connection refused")
        return self.metrics

    def apply(self, obj):
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        (self.rayservices if obj["kind"] == "RayService" else self.services)[key] = obj

    def get_rayservice(self, ns, name):
        return self.rayservices.get((ns, name))

    def patch_status(self, plural, ns, name, status):
        self.patches.append((ns, name, status))
        p = self.pools[(ns, name)]
        p["status"] = {**(p.get("status") or {}), **status}


def _pool(ns: str, name: str, spec: dict, status: dict | None = None, gen: int = 1) -> dict:
    return {"apiVersion": "ponder.dev/v1alpha1", "kind": "ModelPool", "spec": spec, "status": status or {},
            "metadata": {"namespace": ns, "name": name, "uid": f"uid-{ns}-{name}", "generation": gen}}


DEMAND = {"replicas": {"min": 1, "max": 10},
          "autoscaling": {"demand": {"enabled": True, "replica_capacity_cu_per_s": 100, "headroom": 1.0,
                                     "lookahead_s": 0}}}


def _min_replicas(rs: dict) -> int:
    import yaml

    return yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"][0]["deployments"][0]["autoscaling_config"][
        "min_replicas"]


def test_demand_pass_per_namespace_and_clears_disabled_floors():
    plain = {"replicas": {"min": 1, "max": 10}}
    kube = FakeKube([_pool("ponder", "small", DEMAND), _pool("team-b", "small", DEMAND),
                     _pool("ponder", "old", plain, {"replicasFloor": 4, "plannedDemandAt": 1.0})],
                    metrics=[EXPOSITION])
    s = Settings(namespace="ponder")
    handlers.demand_pass(kube, s, now=1000.0)
    assert kube.pools[("ponder", "small")]["status"]["replicasFloor"] == 2   # 120.5 cu/s
    assert kube.pools[("team-b", "small")]["status"]["replicasFloor"] == 1   # its own 7 cu/s
    assert _min_replicas(kube.rayservices[("ponder", "ponder-small")]) == 2
    assert kube.pools[("ponder", "old")]["status"]["replicasFloor"] is None
    assert _min_replicas(kube.rayservices[("ponder", "ponder-old")]) == 1
    ref = kube.rayservices[("ponder", "ponder-small")]["metadata"]["ownerReferences"][0]
    assert ref["uid"] == "uid-ponder-small"
    kube.rayservices.clear()
    handlers.demand_pass(kube, s, now=1030.0)  # unchanged floors: nothing re-applied
    assert kube.rayservices == {}
    kube.metrics = None
    handlers.demand_pass(kube, s, now=1060.0)  # router down: floors kept
    assert kube.pools[("ponder", "small")]["status"]["replicasFloor"] == 2


def test_rayservice_event_sets_ready_and_moves_the_service():
    import logging

    kube = FakeKube([_pool("ns", "small", {}, gen=3)])
    memo = kopf.Memo(settings=Settings(), kube=kube)
    rs = {"metadata": {"generation": 2, "annotations": {names.POOL_GENERATION: "3"}},
          "status": {"observedGeneration": 2, "numServeEndpoints": 1,
                     "activeServiceStatus": {"rayClusterName": "ponder-small-x1",
                                             "applicationStatuses": {"small": {"status": "RUNNING"}}}}}
    log = logging.getLogger("test")
    handlers.rayservice_changed(event={"type": "MODIFIED"}, body=rs, namespace="ns",
                                labels={names.POOL_LABEL: "small"}, memo=memo, logger=log)
    st = kube.pools[("ns", "small")]["status"]
    assert st["activeCluster"] == "ponder-small-x1"
    assert [c["status"] for c in st["conditions"] if c["type"] == "Ready"] == ["True"]
    assert kube.services[("ns", "ponder-pool-small")]["spec"]["selector"]["ray.io/cluster"] == "ponder-small-x1"
    n = len(kube.patches)
    handlers.rayservice_changed(event={"type": "MODIFIED"}, body=rs, namespace="ns",
                                labels={names.POOL_LABEL: "small"}, memo=memo, logger=log)
    assert len(kube.patches) == n  # nothing changed: no write
    kube.rayservices.clear()
    handlers.rayservice_changed(event={"type": "DELETED"}, body=rs, namespace="ns",
                                labels={names.POOL_LABEL: "small"}, memo=memo, logger=log)
    again = kube.rayservices[("ns", "ponder-small")]  # deleted by hand: recreated for generation 3
    assert again["metadata"]["annotations"][names.POOL_GENERATION] == "3"
    assert again["metadata"]["ownerReferences"][0]["uid"] == "uid-ns-small"
    assert [c["reason"] for c in kube.pools[("ns", "small")]["status"]["conditions"]] == ["Deploying"]


def test_router_exposition_reaches_the_operator_per_namespace():
    """The router's real gauge, rendered by prometheus_client, parsed by the operator."""
    from prometheus_client import generate_latest

    from ponder.common.config import PoolConfig
    from ponder.router.metrics import RouterMetrics

    t = {"now": 0.0}
    pools = [PoolConfig(name="small"), PoolConfig(name="reasoning", tier="reasoning")]
    texts = []
    for ns, cu in (("team-a", 6000.0), ("team-b", 600.0), ("", 60.0)):
        m = RouterMetrics(pools, clock=lambda: t["now"], namespace=ns)
        m.planned("small", cu)
        texts.append(generate_latest(m.registry).decode())
    got = demand.parse_demand(texts, namespace="ponder")
    assert got[("team-a", "small")] == 100.0 and got[("team-b", "small")] == 10.0  # cu / tau (60 s)
    assert got[("ponder", "small")] == 1.0 and got[("team-a", "reasoning")] == 0.0


async def test_standby_answers_healthz_until_it_leads():
    import socket
    import urllib.request


    from ponder_operator.__main__ import standby_health

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runner = await standby_health(f"http://127.0.0.1:{port}/healthz")
    try:
        import asyncio

        body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read())
        assert b'"leader": false' in body
    finally:
        await runner.cleanup()
    with socket.socket() as s:  # the port is free again for kopf's own endpoint (aiohttp reuses addresses too)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
