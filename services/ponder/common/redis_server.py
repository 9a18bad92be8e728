"""A local redis-server for ``ponder up`` and tests, when no REDIS_URL is given.

Starts ``redis-server`` on a free loopback port with its data (append-only
file) under the cache directory, waits until it answers PING, and stops it on
exit. A missing binary fails with the command that installs it. ``supervise``
restarts a server that died (kill -9, OOM) on the same port with the same
data directory, so the append-only file brings its data back; restarts back
off from ``poll_s`` up to 30 s while it keeps dying.
"""
from __future__ import annotations

import logging
import pathlib
import shutil
import socket
import subprocess
import threading
import time

from ponder.common.errors import DependencyMissing, PonderError

log = logging.getLogger(__name__)
INSTALL_HINT = "install it with `sudo apt-get install redis-server` (Debian/Ubuntu), `brew install redis` (macOS), or set REDIS_URL"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalRedis:
    def __init__(self, data_dir: pathlib.Path, port: int | None = None, binary: str = "redis-server"):
        self.data_dir = pathlib.Path(data_dir)
        self.port = port or free_port()
        self.binary = binary
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> "LocalRedis":
        exe = shutil.which(self.binary)
        if exe is None:
            raise DependencyMissing("redis-server", INSTALL_HINT)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes", "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise PonderError(f"redis-server exited with {self.proc.returncode}: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self._stop_proc()
        raise PonderError(f"redis-server did not answer on port {self.port} within {timeout_s}s")

    def supervise(self, poll_s: float = 0.5) -> "LocalRedis":
        """Watch the server in a daemon thread and restart it when it exits unasked."""
        self._stopping.clear()

        def loop() -> None:
            wait = poll_s
            while not self._stopping.wait(wait):
                with self._lock:
                    # proc None here means a restart failed (start cleans up after itself): try again.
                    if self._stopping.is_set() or (self.proc is not None and self.proc.poll() is None):
                        wait = poll_s
                        continue
                    code = self.proc.returncode if self.proc is not None else "a failed restart"
                    try:
                        self.start()
                        self.restarts += 1
                        wait = poll_s
                        log.warning("redis-server exited with %s; restarted on port %d with its data", code, self.port)
                    except PonderError as e:
                        wait = min(30.0, wait * 2)
                        log.error("redis-server exited with %s and did not restart (next try in %.0fs): %s", code, wait, e)

        self._supervisor = threading.Thread(target=loop, name="redis-supervisor", daemon=True)
        self._supervisor.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._stop_proc()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(5)
            self._supervisor = None

    def _stop_proc(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "LocalRedis":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
