"""Read a folder of benchmark JSON and write ``report.md`` with one PNG per section.

``load_result`` accepts a file holding one JSON object, or a benchmark's whole
stdout whose last non-empty line is that object. ``build_report`` renders
every registered section whose ``NAME.json`` is in the folder, lists the
missing ones as not measured, and fails (``ReportInputError``, naming the
file and the key) on unreadable JSON, a missing key or an ill-shaped series.
It fails as well when no section has data, so an empty report is never written.
"""
from __future__ import annotations

import json
import os
import pathlib

from ponder.common.errors import InvalidArgument
from ponder.report.sections import SECTIONS, Section, check_names

RUNS_FILE = "runs.json"


class ReportInputError(InvalidArgument):
    """A benchmark result file that cannot be read or lacks what its section draws; ``field`` is the path."""

    def __init__(self, path: pathlib.Path | str, problem: str):
        super().__init__(str(path), problem)


def load_result(path: pathlib.Path) -> dict:
    """The JSON object in ``path`` (whole file, or else its last non-empty line); ReportInputError otherwise."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ReportInputError(path, f"cannot read: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as whole:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        try:
            data = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            data = None
        if data is None:
            raise ReportInputError(path, f"not valid JSON (line {whole.lineno}, column {whole.colno}: {whole.msg})") \
                from None
    if not isinstance(data, dict):
        raise ReportInputError(path, f"expected a JSON object, got {type(data).__name__}")
    return data


def check_keys(path: pathlib.Path, data: dict, required: tuple[str, ...]) -> None:
    """ReportInputError naming the first dotted key path in ``required`` that ``data`` lacks."""
    for dotted in required:
        node = data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ReportInputError(path, f"missing key {dotted!r}")
            node = node[part]


def _table(rows: list[tuple[str, str]]) -> list[str]:
    return ["| figure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def render_section(sec: Section, data: dict, src: pathlib.Path, out_dir: pathlib.Path, run: dict | None) -> list[str]:
    """Draw ``sec``'s PNG into ``out_dir`` and return its Markdown lines."""
    check_keys(src, data, sec.required)
    png = out_dir / f"{sec.name}.png"
    try:
        sec.draw(data, png)
        rows = sec.rows(data)
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
        detail = f"missing key {e.args[0]!r}" if isinstance(e, KeyError) else str(e)
        raise ReportInputError(src, f"cannot draw {sec.name!r}: {detail}") from None
    how = f"`python bench/{sec.script}{''.join(' ' + a for a in run['args'])}`" if run else f"`bench/{sec.script}`"
    if run and run.get("mode"):
        how += f" ({run['mode']} run)"
    lines = [f"## {sec.title}", "", sec.what, "", f"![{sec.title}]({png.name})", "", *_table(rows), "",
             f"Source: {how}, result in `{os.path.relpath(src, out_dir)}`"
             + (f" ({run['seconds']:.0f} s)" if run and "seconds" in run else "") + ".", ""]
    return lines


def build_report(from_dir: pathlib.Path, out_dir: pathlib.Path | None = None,
                 only: list[str] | None = None) -> pathlib.Path:
    """Write ``report.md`` and the PNGs into ``out_dir`` (default ``from_dir``); returns the Markdown path."""
    from_dir = pathlib.Path(from_dir)
    out_dir = pathlib.Path(out_dir or from_dir)
    if not from_dir.is_dir():
        raise ReportInputError(from_dir, "no such folder of benchmark results")
    names = check_names(only)
    runs = load_result(from_dir / RUNS_FILE) if (from_dir / RUNS_FILE).exists() else {}
    body: list[str] = []
    missing: list[str] = []
    for name in names:
        src = from_dir / f"{name}.json"
        if not src.exists():
            missing.append(name)
            continue
        body += render_section(SECTIONS[name], load_result(src), src, out_dir, runs.get("runs", {}).get(name))
    if not body:
        expected = ", ".join(f"{n}.json" for n in names)
        raise ReportInputError(from_dir, f"no benchmark results found (expected one of {expected})")
    head = ["# ponder benchmark report", ""]
    if runs:
        modes = {r.get("mode", runs.get("mode", "?")) for n, r in runs.get("runs", {}).items() if n in names}
        mode = modes.pop() if len(modes) == 1 else "mixed (see each section)"
        head += [f"Mode: **{mode}**, revision `{runs.get('revision', '?')}`, run {runs.get('finished', '?')}.", ""]
    head += ["Every plot and figure below is drawn from the benchmarks' own JSON output in this folder; "
             "rerun with `ponder report` (or `ponder report --from DIR` for saved results).", ""]
    if missing:
        body += ["## Not measured", "",
                 *(f"- {SECTIONS[n].title}: no `{n}.json` (run `bench/{SECTIONS[n].script}`)" for n in missing), ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    md.write_text("\n".join(head + body).rstrip() + "\n")
    return md
