"""Regenerate the Python code for protos/ into services/ponder/v1/.

Usage: python scripts/gen_protos.py [--out DIR]

The generated modules live in their own package (``ponder.v1``) and are never
edited by hand; tests/unit/test_protos_fresh.py fails when they are stale.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
HEADER = '"""Generated from protos/ponder/v1 by scripts/gen_protos.py. Do not edit."""\n'


def generate(out: pathlib.Path) -> list[pathlib.Path]:
    """Run protoc on every .proto under protos/; return the files written."""
    from grpc_tools import protoc
    import grpc_tools

    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = []
    for pkg in {pathlib.Path(p).parent for p in protos}:
        init = out / pkg / "__init__.py"
        init.write_text(HEADER)
        written.append(init)
    written += sorted((out / "ponder").rglob("*_pb2*.py*"))
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "services")
    args = ap.parse_args(argv)
    for path in generate(args.out):
        print(path.relative_to(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
