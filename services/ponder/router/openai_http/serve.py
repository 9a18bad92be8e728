"""Run the OpenAI-compatible front with uvicorn inside the router's event loop."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from typing import Callable

import uvicorn

from ponder.router.openai_http.app import build_app
from ponder.router.request_path import RequestPath


class _Server(uvicorn.Server):
    # The process that hosts the router owns its signals (``ponder up`` stops on SIGINT/SIGTERM).
    @contextlib.contextmanager
    def capture_signals(self):
        yield


@dataclasses.dataclass
class HttpFront:
    server: uvicorn.Server
    task: asyncio.Task
    host: str
    port: int
    tls_watcher: asyncio.Task | None = None  # reloads the certificate when TLS is on

    @property
    def url(self) -> str:
        """The OpenAI base URL clients use (``.../v1``; https when TLS is on)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else ("[::1]" if self.host == "::" else self.host)
        scheme = "https" if self.tls_watcher is not None else "http"
        return f"{scheme}://{host}:{self.port}/v1"

    async def stop(self, grace_s: float) -> None:
        """Stop accepting, let streams in flight finish for up to ``grace_s``, then close."""
        if self.tls_watcher is not None:
            self.tls_watcher.cancel()
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), grace_s + 1.0)
        except asyncio.TimeoutError:
            self.server.force_exit = True
            await self.task


async def start_http(path_of: Callable[[], RequestPath], host: str, port: int, grace_s: float = 5.0,
                     tls=None) -> HttpFront:
    """Bind ``host:port`` (0 = any free port) and serve; raises OSError when the port is taken.
    With ``tls`` (a ``TLSConfig`` with a certificate) it serves HTTPS, the certificate re-read when its files change."""
    from ponder.common.tls import http_ssl_context, watch_http_context

    ssl_context = http_ssl_context(tls)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it a response's header and body writes wait out the client's delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.setblocking(False)
    config = uvicorn.Config(build_app(path_of), log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=grace_s, server_header=False,
                            ssl_context_factory=(lambda _config, _default: ssl_context) if ssl_context else None)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
            raise RuntimeError("HTTP front stopped while starting")
        await asyncio.sleep(0.005)
    watcher = asyncio.create_task(watch_http_context(ssl_context, tls)) if ssl_context else None
    return HttpFront(server, task, host, sock.getsockname()[1], watcher)
