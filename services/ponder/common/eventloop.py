"""The event loop every ponder server runs on: uvloop where it is installed, else asyncio's own.

uvloop (libuv under the asyncio API) roughly halves the per-call CPU that
the asyncio machinery around a grpc.aio call costs (task switches, callbacks,
socket readiness), which is most of what a request through a ponder server
spends. ``PONDER_EVENT_LOOP=asyncio`` forces the standard loop (for
debugging, or a platform uvloop does not support); any other value than
``uvloop``, ``asyncio`` or unset is refused.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any, Callable, Coroutine

ENV = "PONDER_EVENT_LOOP"


def loop_factory(choice: str | None = None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop constructor for ``choice`` (default: $PONDER_EVENT_LOOP, else uvloop when importable).

    Returns None for asyncio's default loop. Raises ValueError naming the
    variable for an unknown choice, ImportError when uvloop is asked for and missing.
    """
    choice = (choice if choice is not None else os.environ.get(ENV, "")).strip().lower()
    if choice not in ("", "uvloop", "asyncio"):
        raise ValueError(f"{ENV}={choice!r} is not supported (uvloop, asyncio)")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run(main)`` on the loop ``loop_factory()`` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def freeze_startup_heap() -> int:
    """Once a server is up: collect, then move every object alive now into the permanent
    generation (``gc.freeze``), so the cyclic collector never rescans the imported
    libraries, config and models again. A full collection of that heap takes
    tens to hundreds of milliseconds, which every request that happened to
    trigger one paid as latency (the p99). Returns the number of objects frozen.
    """
    import gc

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def cancel_requested() -> bool:
    """True when the running task has a cancellation pending (``Task.cancelling()`` > 0).

    A loop that awaits redis-py's asyncio client must check this as well as
    catching CancelledError: a cancel that lands while a command waits inside
    the client's timeout block can be swallowed there (redis/redis-py#2028,
    #2551; seen with redis 8.1), the await returns normally and the loop would
    run on, never to end. The cancel request stays counted on the task, so the
    loop can still see it and stop. False outside a task."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
