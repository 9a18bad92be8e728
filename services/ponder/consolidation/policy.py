"""ConsolidationPolicies as the consolidator sees them: the file the operator writes, the
idle test and the schedule window, all reloadable without a restart.

``consolidation.yaml`` is ``{"policies": [{"name": ..., <ConsolidationPolicy spec>}]}``.
A pool with no policy gets the spec's defaults. A bad file is reported with its
field paths and the policies in force stay as they were.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import pathlib

import yaml
from pydantic import ValidationError

from ponder.common.crd_models import ConsolidationPolicySpec
from ponder.common.errors import ConfigError

log = logging.getLogger(__name__)

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def _field_values(expr: str, lo: int, hi: int) -> set[int]:
    out: set[int] = set()
    for part in expr.split(","):
        rng, _, step_s = part.partition("/")
        step = int(step_s) if step_s else 1
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            a, b = (int(x) for x in rng.split("-", 1))
        else:
            a = b = int(rng)
            if step_s:
                b = hi
        out.update(range(a, b + 1, step))
    return out


def in_schedule(cron: str | None, when: dt.datetime) -> bool:
    """Whether the UTC minute ``when`` matches the 5-field cron expression (minute hour
    day-of-month month day-of-week, 0 = Sunday; ``*``, ``a-b``, ``a,b``, ``/n``). None: always.
    Day-of-month and day-of-week combine as in cron: either matches when both are restricted."""
    if not cron:
        return True
    f = cron.split()
    if len(f) != 5:
        raise ValueError(f"schedule: expected 5 cron fields, got {cron!r}")
    when = when.astimezone(dt.timezone.utc)
    vals = [_field_values(e, lo, hi) for e, (lo, hi) in zip(f, _RANGES)]
    dow = (when.isoweekday() % 7)
    vals[4] = {d % 7 for d in vals[4]}
    if when.minute not in vals[0] or when.hour not in vals[1] or when.month not in vals[3]:
        return False
    dom_ok, dow_ok = when.day in vals[2], dow in vals[4]
    if f[2] != "*" and f[4] != "*":
        return dom_ok or dow_ok
    return dom_ok and dow_ok


def is_idle(queue_depth: int, running: int, spec: ConsolidationPolicySpec) -> bool:
    """Idle when nothing waits and the requests running stay at or below the policy's
    ``idle.max_ongoing_requests_per_replica`` (Stats is one replica's view)."""
    return queue_depth == 0 and running <= spec.idle.max_ongoing_requests_per_replica


def rest_after_step_s(step_s: float, max_pass_share: float) -> float:
    """Seconds a pool rests after a consolidation step of ``step_s`` so that consolidation
    takes at most ``max_pass_share`` (0 < share <= 1) of the pool's time: busy d, then idle
    d * (1 - share) / share, a duty cycle of exactly ``share``. Returns >= 0 (0 at share 1
    or for a step of no duration); ValueError for a share outside (0, 1]."""
    if not 0 < max_pass_share <= 1:
        raise ValueError(f"idle.max_pass_share: must be in (0, 1], got {max_pass_share}")
    return max(0.0, step_s) * (1.0 - max_pass_share) / max_pass_share


def interval_wait_s(last_consolidated_at: float | None, now: float, min_interval_s: float) -> float:
    """Seconds until context may be consolidated again under ``min_interval_s`` (measured
    from the end of its last consolidation, whatever version it was made from). 0 when it
    may run now or was never consolidated; never negative."""
    if not last_consolidated_at:
        return 0.0
    return max(0.0, last_consolidated_at + min_interval_s - now)


def eviction_victims(oldest_first: list[str], in_use: set[str], total: int, cap: int | None) -> list[str]:
    """Contexts to evict so that ``total`` stored contexts fall to ``cap``: the oldest first,
    skipping any in ``in_use`` (held by a running job). May return fewer than needed when
    the rest are in use; [] when ``cap`` is None or not exceeded."""
    if cap is None or total <= cap:
        return []
    need = total - cap
    return [c for c in oldest_first if c not in in_use][:need]


@dataclasses.dataclass(frozen=True)
class NamedPolicy:
    name: str
    spec: ConsolidationPolicySpec


def parse_policies(data, source: str) -> dict[str, NamedPolicy]:
    """Policies by pool; ConfigError with ``policies[i].field`` paths for a bad document,
    and for two policies naming one pool."""
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("policies", []), list):
        raise ConfigError(source, [("<root>", "expected a mapping with a list under 'policies'")])
    out: dict[str, NamedPolicy] = {}
    problems: list[tuple[str, str]] = []
    for i, item in enumerate(data.get("policies") or []):
        item = dict(item or {})
        name = str(item.pop("name", f"policy-{i}"))
        try:
            spec = ConsolidationPolicySpec.model_validate(item)
        except ValidationError as e:
            problems += [(f"policies[{i}]." + ".".join(str(x) for x in err["loc"]), err["msg"]) for err in e.errors()]
            continue
        if spec.pool in out:
            problems.append((f"policies[{i}].pool", f"pool {spec.pool!r} already has policy {out[spec.pool].name!r}"))
            continue
        out[spec.pool] = NamedPolicy(name, spec)
    if problems:
        raise ConfigError(source, problems)
    return out


class PolicyBook:
    """The policies in force, re-read from ``path`` when its mtime changes."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = pathlib.Path(path) if path else None
        self._mtime: float | None = None
        self.policies: dict[str, NamedPolicy] = {}
        self.error: str = ""
        self.reload()

    def reload(self) -> bool:
        """Re-read the file if it changed; True when the policies changed."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return False
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            new = parse_policies(yaml.safe_load(self.path.read_text()), str(self.path))
        except (ConfigError, yaml.YAMLError, OSError) as e:
            self.error = str(e)
            log.error("consolidation policies not applied: %s", e)
            return False
        self.error = ""
        changed = new != self.policies
        self.policies = new
        if changed:
            log.info("consolidation policies in force: %s", sorted(p.name for p in new.values()))
        return changed

    def max_contexts(self) -> int | None:
        """The store's cap on contexts: the smallest ``retention.max_contexts`` any policy in
        force sets (contexts are shared by all pools); None when none sets one."""
        caps = [p.spec.retention.max_contexts for p in self.policies.values() if p.spec.retention.max_contexts]
        return min(caps) if caps else None

    def for_pool(self, pool: str) -> ConsolidationPolicySpec:
        p = self.policies.get(pool)
        return p.spec if p else ConsolidationPolicySpec(pool=pool)
