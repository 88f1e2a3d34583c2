"""A real `mlflow server` for the tests: sqlite backend, local artifacts proxied with
--serve-artifacts, bound to 127.0.0.1 on a free port, started and stopped by
tests/support/processes.py. Used by tests/images (in .venv-mlflow) and by the DAG pipeline tests
(in .venv, with the programs of .venv-mlflow)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .net import free_port
from .processes import clean_env, running


@dataclass
class MlflowServer:
    uri: str
    root: Path
    proc: subprocess.Popen
    log: Path


def server_command(mlflow: Path, root: Path, port: int) -> list[str]:
    return [
        str(mlflow), "server",
        "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
        "--artifacts-destination", str(root / "artifacts"), "--serve-artifacts",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip


@contextlib.contextmanager
def mlflow_server(bin_dir: Path, root: Path) -> Iterator[MlflowServer]:
    """`<bin_dir>/mlflow server` with its files under `root`, until the block ends."""
    port = free_port()
    log = root / "server.log"
    env = clean_env(root, bin_dir)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # as the chart runs it (mlflow.jobExecution)
    uri = f"http://127.0.0.1:{port}"
    with running(server_command(bin_dir / "mlflow", root, port), log, env, f"{uri}/health", cwd=root) as proc:
        yield MlflowServer(uri=uri, root=root, proc=proc, log=log)
