"""The chart's pre-delete hook (``ponder_operator.uninstall``) on an in-memory API that
behaves like the garbage collector: deleting a ModelPool removes its RayService."""
from __future__ import annotations

from ponder_operator import uninstall

KOPF = uninstall.KOPF_FINALIZER


class Cluster:
    def __init__(self, pools: list[tuple[str, str, list[str]]], policies: list[tuple[str, str]] = ()):
        self.objs = {"modelpools": {}, "routingpolicies": {}, "consolidationpolicies": {}}
        for ns, name, finalizers in pools:
            self.objs["modelpools"][(ns, name)] = {"metadata": {"namespace": ns, "name": name, "finalizers": finalizers}}
        for ns, name in policies:
            self.objs["routingpolicies"][(ns, name)] = {"metadata": {"namespace": ns, "name": name}}
        self.rayservices = {(ns, f"ponder-{name}"): {"metadata": {"namespace": ns, "name": f"ponder-{name}"}}
                            for ns, name, _ in pools}
        self.deletes: list = []
        self.stripped: list = []

    def list_ponder(self, ns, plural):
        return [o for (n, _), o in self.objs[plural].items() if ns is None or n == ns]

    def list_rayservices(self, ns, selector):
        assert selector == "app.kubernetes.io/managed-by=ponder-operator"
        return [o for (n, _), o in self.rayservices.items() if ns is None or n == ns]

    def delete_ponder(self, ns, plural, name):
        self.deletes.append((plural, ns, name))
        o = self.objs[plural][(ns, name)]
        o["metadata"]["deletionTimestamp"] = "now"
        self._collect()

    def remove_finalizer(self, ns, plural, name, finalizer):
        self.stripped.append((plural, ns, name))
        o = self.objs[plural][(ns, name)]
        o["metadata"]["finalizers"] = [f for f in o["metadata"]["finalizers"] if f != finalizer]
        self._collect()

    def _collect(self):
        for plural, objs in self.objs.items():
            for key, o in list(objs.items()):
                if o["metadata"].get("deletionTimestamp") and not o["metadata"].get("finalizers"):
                    del objs[key]
                    if plural == "modelpools":
                        self.rayservices.pop((key[0], f"ponder-{key[1]}"), None)


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def test_deletes_everything_and_waits_for_the_rayservices():
    c = Cluster([("a", "small", []), ("b", "gpu", [])], [("a", "policy")])
    clock = Clock()
    assert uninstall.run(c, [None], timeout_s=60, clock=clock, sleep=clock.sleep) == 0
    assert not c.rayservices and not any(c.objs.values())
    assert ("routingpolicies", "a", "policy") in c.deletes and len(c.deletes) == 3


def test_only_the_watched_namespaces():
    c = Cluster([("a", "small", []), ("other", "keep", [])])
    clock = Clock()
    assert uninstall.run(c, ["a"], timeout_s=60, clock=clock, sleep=clock.sleep) == 0
    assert list(c.objs["modelpools"]) == [("other", "keep")] and ("other", "ponder-keep") in c.rayservices


def test_old_kopf_finalizer_removed_after_half_the_timeout():
    c = Cluster([("a", "small", [KOPF])])
    clock = Clock()
    assert uninstall.run(c, [None], timeout_s=60, poll_s=2, clock=clock, sleep=clock.sleep) == 0
    assert c.stripped == [("modelpools", "a", "small")] and 30 <= clock.t <= 34


def test_times_out_when_something_else_holds_an_object():
    c = Cluster([("a", "small", ["example.com/other"])])
    clock = Clock()
    assert uninstall.run(c, [None], timeout_s=20, clock=clock, sleep=clock.sleep) == 1
    assert uninstall.pending({"modelpools": c.list_ponder(None, "modelpools")}, []) == ["modelpools a/small"]
