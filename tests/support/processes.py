"""Start and stop the servers of the tests: one way for every test.

`running()` starts a program in its own process group with its output in a log file, waits
until it is ready (an HTTP URL answers 200, or any check such as `ssh_banner(port)`), yields
the process and always stops the whole group (SIGTERM, then SIGKILL). When the program exits
or is not ready in time, the error carries the last lines of its log. `serving_in_thread()`
does the same for a fake server of the test process itself (socketserver/http.server): it
answers as soon as it is bound, serves from a daemon thread and is always shut down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

Ready = Callable[[], bool]


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file (for error messages)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the whole process group (server workers too), then SIGKILL."""
    if proc.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # stray children of a dead leader
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=grace)


def http_ok(url: str) -> Ready:
    """Ready when `url` answers HTTP 200."""

    def check() -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    check.__doc__ = url
    return check


def ssh_banner(port: int, host: str = "127.0.0.1") -> Ready:
    """Ready when an SSH server greets on host:port."""

    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5) as s:
                return s.recv(64).startswith(b"SSH-2.0-")
        except OSError:
            return False

    check.__doc__ = f"ssh on {host}:{port}"
    return check


def wait_ready(
    ready: Ready,
    gone: Callable[[], str | None],
    timeout: float,
    what: str,
    diagnostics: Callable[[], str] = str,
    interval: float = 0.2,
) -> None:
    """Poll `ready()` until true. `gone()` says why the thing can no longer become ready (it exited),
    else None; either that or the deadline raises RuntimeError with `diagnostics()` (its log)."""
    deadline = time.monotonic() + timeout
    while not ready():
        reason = gone()
        if reason is not None:
            raise RuntimeError(f"{reason}:\n{diagnostics()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout}s:\n{diagnostics()}")
        time.sleep(interval)


@contextlib.contextmanager
def running(
    cmd: list[str],
    log: Path,
    env: dict[str, str],
    ready: str | Ready,
    timeout: float = 90.0,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """Run `cmd` until the block ends; first wait until `ready` (a URL answering 200, or a check)."""
    check = http_ok(ready) if isinstance(ready, str) else ready
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        wait_ready(
            check,
            lambda: None if proc.poll() is None else f"{cmd[:3]} exited with {proc.returncode} before ready",
            timeout,
            what=check.__doc__ or str(cmd[:3]),
            diagnostics=lambda: tail(log),
        )
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def serving_in_thread(server: socketserver.BaseServer) -> Iterator[int]:
    """Serve `server` (bound to 127.0.0.1:0) from a daemon thread until the block ends; yields its port."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def clean_env(home: Path, bin_dir: Path) -> dict[str, str]:
    """A clean environment like a pod's: programs from `bin_dir`, no inherited Python settings."""
    return {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }
