"""Names and labels of the objects the operator owns (pure)."""
from __future__ import annotations

POOL_LABEL = "ponder.dev/pool"
POOL_GENERATION = "ponder.dev/pool-generation"
MANAGED_BY = {"app.kubernetes.io/managed-by": "ponder-operator", "app.kubernetes.io/part-of": "ponder"}
IMPORT_PATH = "ponder.pools.serve_app:build_app"
SERVICER_FUNCTION = "ponder.v1.pool_pb2_grpc.add_ModelPoolServicer_to_server"


def rayservice_name(pool: str) -> str:
    return f"ponder-{pool}"


def service_name(pool: str) -> str:
    return f"ponder-pool-{pool}"


def deployment_name(pool: str) -> str:
    """The Serve deployment inside the pool's application (as ``serve_app`` names it)."""
    return f"pool-{pool}"


def pool_labels(pool: str) -> dict[str, str]:
    return {**MANAGED_BY, "app.kubernetes.io/name": "ponder-pool", "app.kubernetes.io/instance": pool, POOL_LABEL: pool}


def pool_address(pool: str, namespace: str, port: int) -> str:
    return f"{service_name(pool)}.{namespace}.svc:{port}"
