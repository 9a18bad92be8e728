"""The report's sections: one per benchmark, in a registry with a duplicate-name check.

A section reads one benchmark's JSON (``NAME.json``), needs the key paths in
``required`` (dotted), draws ``NAME.png`` with ``draw`` and summarises the
figures as Markdown table rows with ``rows``. ``quick_args`` make the run fit
in a minute or two on a laptop; ``full_args`` are the benchmark's own defaults.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Callable

from ponder.report import plots


@dataclasses.dataclass(frozen=True)
class Section:
    name: str
    title: str
    script: str
    what: str
    required: tuple[str, ...]
    draw: Callable[[dict, pathlib.Path], None]
    rows: Callable[[dict], list[tuple[str, str]]]
    quick_args: tuple[str, ...] = ()
    full_args: tuple[str, ...] = ()


SECTIONS: dict[str, Section] = {}


def register(section: Section) -> Section:
    """Add a section; a second one with the same name is a programming error (ValueError)."""
    if section.name in SECTIONS:
        raise ValueError(f"report section {section.name!r} is registered twice")
    SECTIONS[section.name] = section
    return section


def check_names(names: list[str] | None) -> list[str]:
    """``names`` (all sections when None or empty); InvalidArgument naming --only for an unknown one."""
    from ponder.common.errors import InvalidArgument

    unknown = [n for n in names or () if n not in SECTIONS]
    if unknown:
        raise InvalidArgument("--only", f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    return list(names or SECTIONS)


def _f(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _router_rows(d: dict) -> list[tuple[str, str]]:
    g = d.get("grouped", {})
    base = g.get("baselines", {})
    return [
        ("outcome rows / tables / folds", f"{d.get('n')} / {d.get('files')} / {d.get('folds')} (grouped by subject)"),
        ("classifier", str(d.get("classifier"))),
        ("APGR router (out-of-fold)", _f(d["apgr_grouped"])),
        ("APGR random / oracle", f"{_f(base.get('random', {}).get('apgr'))} / {_f(base.get('oracle', {}).get('apgr'))}"),
        ("strong calls for 50 % / 80 % of the gain (router)", f"{_f(g.get('cpt50'))} / {_f(g.get('cpt80'))}"),
        ("strong calls for 50 % / 80 % of the gain (random)",
         f"{_f(base.get('random', {}).get('cpt50'))} / {_f(base.get('random', {}).get('cpt80'))}"),
    ]


def _budget_rows(d: dict) -> list[tuple[str, str]]:
    return [
        ("requests replayed", f"{d['requests']} (measured over the {d.get('measured_over', 'tail')})"),
        ("target / realised mean compute units", f"{_f(d['target_compute_units'])} / {_f(d['realized_mean_compute_units'])}"),
        ("realised / target", _f(d["realized_over_target"], 4)),
        ("accuracy: router / uniform at the same cost", f"{_f(d['accuracy'], 4)} / {_f(d.get('uniform_accuracy'), 4)}"),
        ("accuracy: weak only / strong only",
         f"{_f(d.get('weak_only_accuracy'), 4)} / {_f(d.get('strong_only_accuracy'), 4)}"),
        ("final λ per compute unit", _f(d.get("final_lambda_per_cu"), 5)),
    ]


def _overhead_rows(d: dict) -> list[tuple[str, str]]:
    c1, c16 = d["concurrency_1"], d["concurrency_16"]
    return [
        ("calls per path", str(c1.get("calls"))),
        ("added p50 / p99 ms, concurrency 1", f"{_f(d['added_p50_ms'])} / {_f(d.get('added_p99_ms'))}"),
        ("added p50 / p99 ms, concurrency 16", f"{_f(c16.get('added_p50_ms'))} / {_f(c16.get('added_p99_ms'))}"),
        ("direct p50 ms (client -> pool), concurrency 1", _f(c1.get("direct_p50_ms"))),
        ("router CPU µs per request", _f(d.get("router_cpu_us_per_request"), 1)),
        ("target (added p50 ms at 1 / 16)", f"{d.get('target', {}).get('added_p50_ms')} / "
                                            f"{d.get('target', {}).get('concurrency_16_added_p50_ms')}"),
    ]


def _voting_rows(d: dict) -> list[tuple[str, str]]:
    return [
        ("task / sampler", f"{d['task']} / {d.get('sampler')}"),
        ("steps / k", f"{d['steps']} / {d['k']}"),
        ("samples per step: measured / theory",
         f"{_f(d['samples_per_step'], 4)} / {_f(d['theory_samples_per_step'], 4)} "
         f"({_f(d.get('samples_per_step_error_pct'), 2)} %)"),
        ("wrong steps / solved", f"{d.get('wrong_steps')} / {d.get('solved')}"),
        ("predicted task success (target)", f"{_f(d.get('predicted_task_success'), 4)} ({d.get('target_success')})"),
    ]


register(Section(
    name="router_cv", title="Accuracy against compute: router, random and oracle", script="router_cv.py",
    what="MMLU outcome tables (Mixtral-8x7B weak, GPT-4 strong); the router's out-of-fold scores on subjects it "
         "never saw in training decide which prompts go to the strong model.",
    required=("apgr_grouped", "curves.acc_weak", "curves.acc_strong", "curves.router.strong_share",
              "curves.router.accuracy", "curves.random.strong_share", "curves.random.accuracy",
              "curves.oracle.strong_share", "curves.oracle.accuracy"),
    draw=plots.router_curves, rows=_router_rows,
    quick_args=("--folds", "3", "--max-files", "15"), full_args=()))

register(Section(
    name="budget", title="Budget controller convergence", script="budget.py",
    what="Replay of MMLU requests through the difficulty policy with λ from the dual-ascent controller; "
         "the running mean cost should settle on the target.",
    required=("requests", "target_compute_units", "realized_mean_compute_units", "realized_over_target", "accuracy",
              "series.request", "series.running_mean_compute_units", "series.lambda_per_cu"),
    draw=plots.budget_convergence, rows=_budget_rows,
    quick_args=("--max-files", "15", "--requests", "3000"), full_args=()))

register(Section(
    name="overhead", title="Latency with and without the router", script="overhead.py",
    what="The same sim pool (zero model time) called directly and through the router, interleaved; "
         "the gap is what the router adds.",
    required=("added_p50_ms", "concurrency_1.cdf_ms.direct", "concurrency_1.cdf_ms.current",
              "concurrency_16.cdf_ms.direct", "concurrency_16.cdf_ms.current"),
    draw=plots.latency_cdfs, rows=_overhead_rows,
    quick_args=("--calls", "600"), full_args=()))

register(Section(
    name="voting_scale", title="Voting cost against theory", script="voting_scale.py",
    what="First-to-ahead-by-k voting on Towers of Hanoi with the scripted sampler (a simulated test double); "
         "samples used against the formula s · E[samples per step | k(s)].",
    required=("task", "steps", "k", "samples_per_step", "theory_samples_per_step", "cost_curve"),
    draw=plots.voting_cost, rows=_voting_rows,
    quick_args=("--disks", "14", "--full-path-disks", "8", "--min-curve-disks", "6"), full_args=()))
