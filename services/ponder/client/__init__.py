"""The Python client library for the ponder router (gRPC), sync and async.

    from ponder.client import Client
    with Client() as c:                      # $PONDER_ADDRESS or 127.0.0.1:50051
        a = c.generate("The capital of France is", budget_cu=50)
        print(a.text, a.plan.pool, a.usage.compute_units)
        for ev in c.stream("Count to five"):
            print(ev.text if isinstance(ev, Delta) else ev.usage)

``AsyncClient`` has the same methods as coroutines and async iterators.
Results are typed (``types``); errors are ponder's own categories from
``ponder.common.errors`` (``InvalidArgument``, ``Unavailable``, ...) carrying the
server's message. Calls retry UNAVAILABLE and RESOURCE_EXHAUSTED with
exponential backoff, honouring the server's ``grpc-retry-pushback-ms`` and a
retry budget (``retry``); a stream retries only before its first event.
Keys and TLS come from arguments or the environment (``config``).
"""
from ponder.client.aio import AsyncClient
from ponder.client.config import ClientConfig
from ponder.client.retry import RetryBudget, RetryPolicy
from ponder.client.sync import Client
from ponder.client.types import Answer, Delta, Plan, PlanResult, PoolStatus, Status, Usage

__all__ = ["AsyncClient", "Client", "ClientConfig", "RetryPolicy", "RetryBudget", "Answer", "Delta", "Plan",
           "PlanResult", "PoolStatus", "Status", "Usage"]
