"""``ponder report --from``: saved benchmark JSON in, Markdown and PNGs out; bad input names the file.

The fixtures under tests/fixtures/report/ are the JSON the benchmarks printed
on tiny real runs (see that folder's README for the command); the last test
runs the voting benchmark for real so the fixtures cannot drift from the
benchmarks' output unnoticed.
"""
from __future__ import annotations

import json
import pathlib
import re
import shutil

import pytest

from ponder.cli import main
from ponder.report.build import ReportInputError, build_report, load_result
from ponder.report.runner import run_benchmarks
from ponder.report.sections import SECTIONS, Section, register

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "report"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def results(tmp_path) -> pathlib.Path:
    d = tmp_path / "results"
    shutil.copytree(FIXTURES, d, ignore=shutil.ignore_patterns("README*", "*.log"))
    return d


def png_size(path: pathlib.Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_MAGIC, f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_report_from_saved_results_draws_every_section(results, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "--from", str(results), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert f"wrote {out / 'report.md'}" in capsys.readouterr().out
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(images) == sorted(f"{name}.png" for name in SECTIONS)
    for name in images:
        w, h = png_size(out / name)
        assert w >= 400 and h >= 300
    # Figures in the tables come from the JSON, not from the code.
    cv = json.loads((results / "router_cv.json").read_text())
    assert f"{cv['apgr_grouped']:.3f}" in md
    vote = json.loads((results / "voting_scale.json").read_text())
    assert f"{vote['samples_per_step']:.4f}" in md
    assert "Not measured" not in md


def test_missing_results_are_listed_not_invented(results, tmp_path):
    (results / "overhead.json").unlink()
    md = build_report(results, tmp_path / "out").read_text()
    assert "## Not measured" in md and "overhead.json" in md
    assert not (tmp_path / "out" / "overhead.png").exists()
    assert (tmp_path / "out" / "budget.png").exists()


def test_malformed_json_fails_naming_the_file(results, tmp_path, capsys):
    bad = results / "budget.json"
    bad.write_text('{"requests": 400, "series": [1, 2,')
    assert main(["report", "--from", str(results), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "not valid JSON" in err
    assert not (tmp_path / "out" / "report.md").exists()


def test_missing_key_and_bad_series_name_file_and_key(results, tmp_path):
    data = json.loads((results / "overhead.json").read_text())
    del data["concurrency_16"]["cdf_ms"]
    (results / "overhead.json").write_text(json.dumps(data))
    with pytest.raises(ReportInputError, match=r"overhead\.json: missing key 'concurrency_16\.cdf_ms\.direct'"):
        build_report(results, tmp_path / "out")
    data = json.loads((results / "budget.json").read_text())
    data["series"]["lambda_per_cu"] = data["series"]["lambda_per_cu"][:-1]
    (results / "budget.json").write_text(json.dumps(data))
    with pytest.raises(ReportInputError, match=r"budget\.json: cannot draw 'budget': series: .* one length"):
        build_report(results, tmp_path / "out", only=["budget"])


def test_load_result_takes_a_benchmarks_whole_stdout(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('progress line\n{"not": "last"}\n{"k": 3}\n\n')
    assert load_result(p) == {"k": 3}
    p.write_text("[1, 2]")
    with pytest.raises(ReportInputError, match="expected a JSON object, got list"):
        load_result(p)


def test_empty_folder_and_unknown_section_are_errors(tmp_path):
    with pytest.raises(ReportInputError, match="no benchmark results found"):
        build_report(tmp_path)
    with pytest.raises(ReportInputError, match="no such folder"):
        build_report(tmp_path / "absent")
    with pytest.raises(Exception, match=r"--only: unknown section\(s\) nope"):
        build_report(FIXTURES, tmp_path, only=["nope"])
    assert main(["report", "--quick", "--only", "budget,nope", "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()  # refused before anything ran


def test_duplicate_section_name_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        register(Section(name="budget", title="", script="", what="", required=(), draw=None, rows=None))


def test_a_real_benchmark_run_feeds_the_report(tmp_path):
    """Runs bench/voting_scale.py (scripted sampler, under a second) through the runner, then builds from it."""
    res = run_benchmarks(tmp_path / "res", quick=True, names=["voting_scale"], echo=lambda *_: None,
                         args_for={"voting_scale": ["--disks", "7", "--full-path-disks", "4", "--min-curve-disks", "4"]})
    fresh = json.loads((res / "voting_scale.json").read_text())
    assert fresh["steps"] == 127 and len(fresh["cost_curve"]) == 4
    # The saved fixture has the keys a fresh run has: the fixtures track the benchmark's output.
    assert set(json.loads((FIXTURES / "voting_scale.json").read_text())) == set(fresh)
    runs = json.loads((res / "runs.json").read_text())
    assert runs["mode"] == "custom" and runs["runs"]["voting_scale"]["args"][:2] == ["--disks", "7"]
    md = build_report(res, tmp_path / "out").read_text()
    assert "![Voting cost against theory](voting_scale.png)" in md and "hanoi-7" in md
    assert "Mode: **custom**" in md
