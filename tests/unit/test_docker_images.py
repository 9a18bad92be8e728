"""The image recipes (docker/*.Dockerfile, docker/build.sh, ``make images``) agree with
the project, the operator and the chart; their Python layers install.

Fast checks parse the Dockerfiles: every COPY source exists, every extra they install
is declared, the pool images' Ray is the ModelPool's default ``ray_version``, the
users match the pods' ``runAsUser``, entry points exist, and the build script builds
exactly the images the chart names. The ``slow`` check replays each image's
``pip install`` lines without Docker, in a clean virtualenv: the operator image's set
is installed for real and its entry point run; the router and CPU pool sets are
resolved (``pip install --dry-run``), and the CUDA pool's pins must exist (resolving
vLLM's CUDA wheels needs the CUDA index and gigabytes of downloads).
"""
from __future__ import annotations

import os
import pathlib
import re
import shlex
import subprocess
import sys
import tomllib

import pytest
import yaml

from ponder.common.crd_models import RAY_VERSION, ModelPoolSpec
from ponder_operator import modelpool

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VALUES = yaml.safe_load((ROOT / "helm" / "ponder" / "values.yaml").read_text())
# image name (as the chart's values name it) -> Dockerfile
IMAGES = {"ponder": "router", "ponder-operator": "operator", "ponder-pool": "pool-cpu", "ponder-pool-cuda": "pool-cuda"}


def recipe(path: pathlib.Path) -> dict:
    """ARG defaults, COPY sources, pip install argument lists (ARGs substituted, the project
    wheel replaced by the repository root), the last USER and ENTRYPOINT."""
    text = re.sub(r"\\\n", " ", path.read_text())
    args: dict[str, str] = {}
    out: dict = {"copies": [], "installs": [], "user": None, "entrypoint": None}
    for line in text.splitlines():
        line = line.strip()
        if m := re.match(r"ARG (\w+)=(\S+)", line):
            args[m.group(1)] = m.group(2)
        elif line.startswith("COPY ") and "--from" not in line:
            out["copies"] += line.split()[1:-1]
        elif line.startswith("RUN "):
            for cmd in line[4:].split("&&"):
                words = shlex.split(cmd.strip())
                if words[:2] == ["pip", "install"]:
                    sub = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], w) for w in words[2:]]
                    sub = [re.sub(r"^\$\(ls /tmp/wheels/\*\.whl\)", str(ROOT), w) for w in sub]
                    out["installs"].append([str(ROOT) + w[1:] if w.startswith(".") else w for w in sub])
        elif line.startswith("USER "):
            out["user"] = line.split()[1].split(":")[0]
        elif line.startswith("ENTRYPOINT "):
            out["entrypoint"] = yaml.safe_load(line[len("ENTRYPOINT "):])
    out["args"] = args
    return out


RECIPES = {name: recipe(DOCKER / f"{file}.Dockerfile") for name, file in IMAGES.items()}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_copies_and_extras_exist(name):
    r = RECIPES[name]
    assert r["copies"] and all((ROOT / c).exists() for c in r["copies"]), r["copies"]
    project = [w for cmd in r["installs"] for w in cmd if w.startswith(str(ROOT))]
    assert project, "the image installs the project"
    for w in project:
        extras = re.findall(r"\[([^\]]+)\]", w)
        for extra in (e for group in extras for e in group.split(",")):
            assert extra in PYPROJECT["project"]["optional-dependencies"], (name, extra)


def test_pool_images_run_the_ray_the_modelpool_declares():
    for name in ("ponder-pool", "ponder-pool-cuda"):
        assert RECIPES[name]["args"]["RAY_VERSION"] == RAY_VERSION
        pins = [w for cmd in RECIPES[name]["installs"] for w in cmd if w.startswith("ray[serve]==")]
        assert pins == [f"ray[serve]=={RAY_VERSION}"]
    assert ModelPoolSpec().ray_version == RAY_VERSION


def test_users_match_the_pods_and_entry_points_exist():
    for name in ("ponder-pool", "ponder-pool-cuda"):
        assert int(RECIPES[name]["user"]) == modelpool._POD_SECURITY["runAsUser"]
    for name in ("ponder", "ponder-operator"):
        assert int(RECIPES[name]["user"]) == VALUES["podSecurityContext"]["runAsUser"]
    assert RECIPES["ponder"]["entrypoint"] == ["ponder"] and "ponder" in PYPROJECT["project"]["scripts"]
    assert RECIPES["ponder-operator"]["entrypoint"] == ["python", "-m", "ponder_operator"]
    assert (ROOT / "operators" / "ponder_operator" / "__main__.py").exists()


def test_build_script_builds_what_the_chart_pulls():
    script = (DOCKER / "build.sh").read_text()
    for name, file in IMAGES.items():
        assert f'"{name}:{file}"' in script and (DOCKER / f"{file}.Dockerfile").exists()
    chart = {VALUES["router"]["image"]["repository"], VALUES["operator"]["image"]["repository"],
             *(v["repository"] for v in VALUES["operator"]["poolImages"].values())}
    assert chart == set(IMAGES)
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^images:\n\tdocker/build.sh$", make, re.M)
    assert os.access(DOCKER / "build.sh", os.X_OK)


def _venv(tmp: pathlib.Path) -> pathlib.Path:
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    return tmp / "venv" / "bin" / "python"


def _pip(py: pathlib.Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_python_layers_install_in_a_clean_venv(tmp_path):
    py = _venv(tmp_path)
    for cmd in RECIPES["ponder-operator"]["installs"]:
        r = _pip(py, *cmd)
        assert r.returncode == 0, r.stderr[-3000:]
    run = subprocess.run([str(py), "-m", "ponder_operator", "--help"], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert run.returncode == 0 and "--renew-deadline-s" in run.stdout, run.stderr[-2000:]
    imp = subprocess.run([str(py), "-c", "import ponder_operator.handlers, ponder_operator.uninstall"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert imp.returncode == 0, imp.stderr[-2000:]
    for name in ("ponder", "ponder-pool"):
        for cmd in RECIPES[name]["installs"]:
            if cmd[:2] == ["--upgrade", "pip==24.3.1"]:
                continue
            r = _pip(py, "--dry-run", "--ignore-installed", *cmd)
            assert r.returncode == 0, (name, r.stderr[-3000:])
    pins = [w for cmd in RECIPES["ponder-pool-cuda"]["installs"] for w in cmd if "==" in w]
    r = _pip(py, "--dry-run", "--ignore-installed", "--no-deps", *pins)
    assert r.returncode == 0, r.stderr[-3000:]
