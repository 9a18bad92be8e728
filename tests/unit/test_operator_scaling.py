"""Difficulty-aware scaling, leader election and the handler wiring (pure parts)."""
from __future__ import annotations

import datetime as dt

import pytest

from ponder.common.crd_models import ModelPoolSpec
from ponder_operator import demand, handlers, leader
from ponder_operator.settings import Settings

SPEC = ModelPoolSpec.model_validate({
    "replicas": {"min": 1, "max": 10},
    "autoscaling": {"downscale_delay_s": 300,
                    "demand": {"enabled": True, "replica_capacity_cu_per_s": 100, "headroom": 1.0, "lookahead_s": 60}},
})

EXPOSITION = """# HELP ponder_router_planned_compute_units_per_second Planned compute units per second
# TYPE ponder_router_planned_compute_units_per_second gauge
ponder_router_planned_compute_units_per_second{pool="small",tier="small"} 120.5
ponder_router_planned_compute_units_per_second{pool="reasoning",tier="reasoning"} 900
ponder_router_planned_compute_units_per_second{pool="broken",tier="small"} NaN
other_metric{pool="small"} 5
"""


def test_parse_demand_sums_router_replicas():
    got = demand.parse_demand([EXPOSITION, EXPOSITION])
    assert got == {"small": 241.0, "reasoning": 1800.0}
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


T0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def test_leader_decisions():
    d = leader.decide(None, "a", T0, 15)
    assert d.action == "create" and d.spec["holderIdentity"] == "a"
    held = d.spec
    assert leader.decide(held, "b", T0 + dt.timedelta(seconds=10), 15).action == "wait"
    renew = leader.decide(held, "a", T0 + dt.timedelta(seconds=10), 15)
    assert renew.action == "renew" and renew.spec["renewTime"].startswith("2025-01-01T00:00:10")
    take = leader.decide(held, "b", T0 + dt.timedelta(seconds=16), 15)
    assert take.action == "acquire" and take.spec["holderIdentity"] == "b" and take.spec["leaseTransitions"] == 1
    assert leader.decide({"holderIdentity": ""}, "b", T0, 15).action == "acquire"


class FakeLeases:
    """In-memory Lease API with resourceVersion conflicts, like the API server."""

    def __init__(self):
        self.obj = None
        self.version = 0

    def read_namespaced_lease(self, name, ns):
        from kubernetes.client import V1Lease, V1LeaseSpec, V1ObjectMeta
        from kubernetes.client.exceptions import ApiException

        if self.obj is None:
            raise ApiException(status=404)
        spec = self.obj["spec"]
        return V1Lease(metadata=V1ObjectMeta(name=name, resource_version=str(self.version)), spec=V1LeaseSpec(
            holder_identity=spec["holderIdentity"], lease_duration_seconds=spec["leaseDurationSeconds"],
            renew_time=dt.datetime.strptime(spec["renewTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc),
            lease_transitions=spec["leaseTransitions"]))

    def create_namespaced_lease(self, ns, body):
        from kubernetes.client.exceptions import ApiException

        if self.obj is not None:
            raise ApiException(status=409)
        self.obj, self.version = body, self.version + 1

    def replace_namespaced_lease(self, name, ns, body):
        from kubernetes.client.exceptions import ApiException

        if body["metadata"]["resourceVersion"] != str(self.version):
            raise ApiException(status=409)
        self.obj, self.version = body, self.version + 1


def test_two_replicas_one_leader():
    api = FakeLeases()
    clock = {"t": T0}
    a = leader.LeaseElector(api, "ns", "l", "a", 15, clock=lambda: clock["t"])
    b = leader.LeaseElector(api, "ns", "l", "b", 15, clock=lambda: clock["t"])
    assert a.try_once() and not b.try_once()
    clock["t"] += dt.timedelta(seconds=5)
    assert a.try_once() and not b.try_once()
    clock["t"] += dt.timedelta(seconds=20)  # a stopped renewing
    assert b.try_once() and not a.try_once()
    assert api.obj["spec"]["holderIdentity"] == "b"


def test_handlers_registered():
    import kopf

    registry = kopf.get_default_registry()
    ids = {h.id for h in registry._changing.get_all_handlers()} | {h.id for h in registry._spawning.get_all_handlers()}
    assert {"reconcile_pool", "observe_pool", "reconcile_policy"} <= {i.split("/")[0] for i in ids}
    assert handlers.POOLS == "modelpools"


def test_settings_from_env():
    s = Settings.from_env({"PONDER_NAMESPACE": "x", "PONDER_IMAGE_PULL_SECRETS": "a,b", "PONDER_ROUTER_PORT": "1"})
    assert (s.namespace, s.image_pull_secrets, s.router_port) == ("x", ("a", "b"), 1)


@pytest.mark.parametrize("argv", [[], ["--namespace", "a", "--no-leader-election"], ["-A"]])
def test_operator_cli(argv):
    from ponder_operator.__main__ import parse_args

    if not argv:
        with pytest.raises(SystemExit):
            parse_args(argv)
    else:
        parse_args(argv)
