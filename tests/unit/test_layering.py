"""Layering: each package imports alone, lower layers never import higher ones, and the
module-level import graph has no cycles (imports inside functions are deliberate lazy loads)."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SRC = ROOT / "services"

# package -> packages it must never import (at module level or lazily).
FORBIDDEN = {
    "ponder.common": ("ponder.pools", "ponder.router", "ponder.voting", "ponder.consolidation", "ponder.softcot"),
    "ponder.pools": ("ponder.router", "ponder.voting", "ponder.consolidation"),
    "ponder.voting": ("ponder.router", "ponder.consolidation"),
    "ponder.router.classifiers": ("ponder.router.training", "ponder.router.policies", "ponder.router.servicer"),
}
PACKAGES = ["ponder.common", "ponder.pools", "ponder.router", "ponder.voting", "ponder.router.classifiers",
            "ponder.router.policies", "ponder.router.strategies", "ponder.router.training", "ponder_operator"]


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for base in (SRC, ROOT / "operators"):
        for p in base.rglob("*.py"):
            rel = p.relative_to(base).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = p
    return out


def imports(path: pathlib.Path, name: str, top_level_only: bool, known: set[str] | None = None) -> set[str]:
    """ponder modules ``path`` imports; ``from pkg import mod`` counts as importing ``pkg.mod`` only."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # include `if TYPE_CHECKING:`-free module-level statements only
        nodes = [n for n in nodes if isinstance(n, (ast.Import, ast.ImportFrom))]
    found = set()
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for n in nodes:
        if isinstance(n, ast.Import):
            found.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = pkg.rsplit(".", n.level - 1)[0] if n.level > 1 else pkg
                mod = f"{base}.{n.module}" if n.module else base
            else:
                mod = n.module or ""
            subs = {f"{mod}.{a.name}" for a in n.names}
            if known is not None and subs <= known:
                found.update(subs)
            else:
                found.add(mod)
                found.update(subs)
    return {m for m in found if m.startswith(("ponder", "ponder_operator"))}


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_alone(package):
    r = subprocess.run([sys.executable, "-c", f"import {package}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_lower_layers_never_import_higher_ones():
    bad = []
    for name, path in modules().items():
        for layer, banned in FORBIDDEN.items():
            if name == layer or name.startswith(layer + "."):
                bad += [(name, m) for m in imports(path, name, False) if m.startswith(banned)]
    assert not bad, bad


def test_no_import_cycles_at_module_level():
    mods = modules()
    known = set(mods)
    graph = {n: {m for m in imports(p, n, True, known) if m in mods and m != n and not n.startswith(m + ".")}
             for n, p in mods.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        stack.append(n)
        for m in graph[n]:
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m, stack)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [])
    # Importing a submodule runs its parent package first; that edge is Python's, not a cycle.
    assert not cycles, cycles


def test_registries_are_filled_by_their_packages_not_by_base_modules():
    mods = modules()
    for name, path in mods.items():
        if not name.endswith(".base"):
            continue
        pkg = name.rpartition(".")[0]
        known = set(mods)
        siblings = {m for m in imports(path, name, False, known) if m.startswith(pkg + ".") and m in mods and m != name}
        plugins = {m for m in siblings if name in imports(mods[m], m, False, known)}
        assert not plugins, f"{name} imports its own package's plug-ins: {sorted(plugins)}"
