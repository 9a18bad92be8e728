"""``ponder top``: a live terminal view of a running router (rich), or ``--json`` snapshots for scripts.

Each frame reads the router's ``Status`` (pools, health, queue, running,
tokens/s, through ``ponder.client``) and, with ``--metrics URL``, its Prometheus
endpoint. Rates (requests/s, compute units/s, error ratio, plan mix) are the
counter differences between two successive scrapes divided by the time
between them; the first frame has none. ``snapshot`` is pure and unit-tested.
"""
from __future__ import annotations

import json
import sys
import time
from collections import defaultdict

from ponder.client.types import Status

Counters = dict[str, dict[tuple, float]]  # metric name -> label values -> value


def parse_metrics(text: str) -> Counters:
    """The router's series from a Prometheus text exposition (unknown series ignored)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: Counters = defaultdict(dict)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name in ("ponder_router_requests_total", "ponder_router_compute_units_total",
                          "ponder_router_planned_compute_units_per_second", "ponder_router_budget_lambda_per_cu"):
                out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return dict(out)


def _delta(cur: Counters, prev: Counters, name: str) -> dict[tuple, float]:
    c, p = cur.get(name, {}), prev.get(name, {})
    return {k: max(0.0, v - p.get(k, 0.0)) for k, v in c.items()}


def snapshot(status: Status, address: str, cur: Counters | None = None, prev: Counters | None = None,
             dt_s: float | None = None, target_cu: float | None = None) -> dict:
    """One frame. Rates are None without two scrapes ``dt_s`` apart; shares are in [0, 1]."""
    out = {
        "router": address, "version": status.version, "policy": status.policy, "http": {"url": status.http_url},
        "pools": [{"name": p.name, "tier": p.tier, "backend": p.backend, "model": p.model, "healthy": p.healthy,
                   "error": p.error, "queue_depth": p.queue_depth, "running": p.running,
                   "tokens_per_s": round(p.tokens_per_s, 3)} for p in status.pools],
        "requests_per_s": None, "error_ratio": None, "cu_per_s": None, "cu_per_request": None,
        "target_cu_per_request": target_cu, "lambda_per_cu": None, "plan_mix": {}, "planned_cu_per_s": {},
    }
    if cur is None:
        return out
    lam = cur.get("ponder_router_budget_lambda_per_cu", {})
    out["lambda_per_cu"] = next(iter(lam.values()), None)
    for labels, v in cur.get("ponder_router_planned_compute_units_per_second", {}).items():
        out["planned_cu_per_s"][dict(labels).get("pool", "-")] = round(v, 3)
    if prev is None or not dt_s or dt_s <= 0:
        return out
    reqs = _delta(cur, prev, "ponder_router_requests_total")
    cus = _delta(cur, prev, "ponder_router_compute_units_total")
    n = sum(reqs.values())
    ok = sum(v for k, v in reqs.items() if dict(k).get("code") == "OK")
    spent = sum(cus.values())
    out["requests_per_s"] = round(n / dt_s, 3)
    out["error_ratio"] = round((n - ok) / n, 4) if n else 0.0
    out["cu_per_s"] = round(spent / dt_s, 3)
    out["cu_per_request"] = round(spent / ok, 3) if ok else None
    mix: dict[str, float] = defaultdict(float)
    for k, v in reqs.items():
        d = dict(k)
        if d.get("pool", "-") != "-":
            mix[f"{d['pool']}/{d.get('strategy', '-')}"] += v
    out["plan_mix"] = {k: round(v / n, 4) for k, v in sorted(mix.items())} if n else {}
    return out


def render(snap: dict):
    """A rich renderable of one frame."""
    from rich.console import Group
    from rich.table import Table

    fmt = lambda v, spec="": "-" if v is None else format(v, spec)  # noqa: E731
    head = Table.grid(padding=(0, 2))
    head.add_row(f"[b]ponder {snap['version']}[/b] at {snap['router']}", f"policy {snap['policy']}",
                 f"OpenAI API {snap['http']['url'] or 'off'}")
    head.add_row(f"requests/s {fmt(snap['requests_per_s'], '.2f')}", f"errors {fmt(snap['error_ratio'], '.1%')}",
                 f"CU/s {fmt(snap['cu_per_s'], '.1f')}  CU/request {fmt(snap['cu_per_request'], '.1f')}"
                 f" (target {fmt(snap['target_cu_per_request'], '.1f')})  λ {fmt(snap['lambda_per_cu'], '.4g')}")
    pools = Table("pool", "tier", "backend", "health", "queue", "running", "tokens/s", "planned CU/s", "model")
    for p in snap["pools"]:
        health = "[green]up[/green]" if p["healthy"] else f"[red]DOWN[/red] {p['error'][:40]}"
        pools.add_row(p["name"], p["tier"], p["backend"], health, str(p["queue_depth"]), str(p["running"]),
                      f"{p['tokens_per_s']:.1f}", fmt(snap["planned_cu_per_s"].get(p["name"]), ".1f"), p["model"])
    mix = Table("plan (pool/strategy)", "share")
    for k, v in snap["plan_mix"].items():
        mix.add_row(k, f"{v:.1%}")
    return Group(head, pools, mix)


def _scrape(url: str) -> Counters | None:
    import httpx

    try:
        return parse_metrics(httpx.get(url, timeout=2.0).text)
    except httpx.HTTPError:
        return None


def cmd_top(args) -> int:
    from ponder.client import Client
    from ponder.common.errors import PonderError

    address = args.address or __import__("os").environ.get("PONDER_ADDRESS") or "127.0.0.1:50051"
    prev = prev_t = None

    def frame(client) -> dict:
        nonlocal prev, prev_t
        status = client.status(timeout_s=5.0)
        now = time.monotonic()
        cur = _scrape(args.metrics) if args.metrics else None
        snap = snapshot(status, address, cur, prev, (now - prev_t) if prev_t else None, args.target_cu)
        prev, prev_t = cur, now
        return snap

    try:
        with Client(address, timeout_s=10.0) as client:
            if args.json:
                for i in range(args.count):
                    if i:
                        time.sleep(args.interval)
                    print(json.dumps(frame(client)), flush=True)
                return 0
            from rich.live import Live

            with Live(render(frame(client)), refresh_per_second=4, screen=False) as live:
                for _ in range(args.count if args.count else sys.maxsize):
                    time.sleep(args.interval)
                    live.update(render(frame(client)))
    except PonderError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("top", help="live view of a running router: pools, load, plan mix, CU/s, errors")
    p.add_argument("--address", help="router host:port (default $PONDER_ADDRESS or 127.0.0.1:50051)")
    p.add_argument("--metrics", help="the router's Prometheus URL (e.g. http://127.0.0.1:9464/metrics) for rates")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between frames")
    p.add_argument("--count", type=int, default=0, help="frames to show (0: until Ctrl-C; --json: 1)")
    p.add_argument("--target-cu", type=float, help="the budget's target CU per request, shown beside the measured one")
    p.add_argument("--json", action="store_true", help="print JSON snapshots, one a line, instead of the live view")
    p.set_defaults(func=lambda a: cmd_top(_json_count(a)))


def _json_count(args):
    if args.json and not args.count:
        args.count = 1
    return args
