"""A client built only from protos/: stubs generated into a temp dir, run in a
separate interpreter that cannot import ponder, calling Generate and GenerateStream."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import grpc_tools
import pytest
from grpc_tools import protoc

pytestmark = pytest.mark.integration
ROOT = pathlib.Path(__file__).resolve().parents[2]

CLIENT = textwrap.dedent(
    """
    import sys
    sys.path = [p for p in sys.path if "services" not in p and p != ""]
    sys.path.insert(0, sys.argv[2])
    try:
        import ponder.cli  # must fail: only the generated stubs are importable
        raise SystemExit("ponder is importable from the client")
    except ImportError:
        pass
    import grpc
    from ponder.v1 import router_pb2, router_pb2_grpc
    with grpc.insecure_channel(sys.argv[1]) as ch:
        stub = router_pb2_grpc.RouterStub(ch)
        r = stub.Generate(router_pb2.GenerateRequest(prompt="from any language"), timeout=10)
        assert r.text and r.plan.pool and r.usage.output_tokens > 0, r
        events = list(stub.GenerateStream(router_pb2.GenerateRequest(prompt="stream please"), timeout=10))
        assert events[-1].HasField("final") and all(e.HasField("delta") for e in events[:-1])
        assert "".join(e.delta.text for e in events[:-1]) == events[-1].final.text
        try:
            stub.Generate(router_pb2.GenerateRequest(prompt=""), timeout=10)
            raise SystemExit("empty prompt accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
    print("OK", r.plan.pool, len(events))
    """
)


async def test_client_from_protos_only(sim_stack, tmp_path):
    out = tmp_path / "stubs"
    out.mkdir()
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    protos = [str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto")]
    rc = protoc.main(["protoc", f"-I{ROOT / 'protos'}", f"-I{include}", f"--python_out={out}",
                      f"--grpc_python_out={out}", *protos])
    assert rc == 0
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    address = sim_stack.router.address
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The editable install puts ponder on the path through a finder hook; -I (isolated)
    # plus -S (no site) keep it out, so the generated stubs are all the client has.
    site = [p for p in sys.path if p.endswith("site-packages")]
    env["PYTHONPATH"] = os.pathsep.join(site)
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-S", str(script), address, str(out),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    assert stdout.decode().startswith("OK small")
