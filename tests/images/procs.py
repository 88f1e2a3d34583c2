"""Start and stop real programs for the tests: own process group, log file, always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

BIN = Path(sys.executable).parent  # .venv-mlflow/bin: mlflow, mlops-trainer


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the whole process group (uvicorn/gunicorn workers too), then SIGKILL."""
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


@contextlib.contextmanager
def running(
    cmd: list[str],
    log: Path,
    env: dict[str, str],
    ready_url: str,
    timeout: float = 90.0,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """Run `cmd` until the block ends; wait until `ready_url` answers 200 first."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:3]} exited with {proc.returncode} before ready:\n{tail(log)}")
            try:
                if requests.get(ready_url, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ready_url} not ready after {timeout}s:\n{tail(log)}")
            time.sleep(0.3)
        yield proc
    finally:
        stop(proc)


def base_env(home: Path) -> dict[str, str]:
    """A clean environment like a pod's: no inherited MLflow/Python settings."""
    return {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }
