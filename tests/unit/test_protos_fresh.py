"""The committed ponder.v1 modules equal what scripts/gen_protos.py generates from protos/."""
from __future__ import annotations

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "services" / "ponder" / "v1"


def _gen_protos():
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path):
    written = _gen_protos().generate(tmp_path)
    fresh = tmp_path / "ponder" / "v1"
    names = sorted(p.relative_to(fresh).as_posix() for p in written)
    assert "router_pb2.py" in names and "pool_pb2_grpc.py" in names and "__init__.py" in names

    stale = [n for n in names if not (COMMITTED / n).is_file() or (COMMITTED / n).read_bytes() != (fresh / n).read_bytes()]
    assert not stale, f"regenerate with `python scripts/gen_protos.py`; stale or missing: {stale}"

    generated_here = sorted(p.name for p in COMMITTED.glob("*_pb2*.py*"))
    leftovers = sorted(set(generated_here) - set(names))
    assert not leftovers, f"generated files with no .proto left in services/ponder/v1: {leftovers}"
