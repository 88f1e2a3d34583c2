"""Real-process tests of images/: they run in .venv-mlflow (`make test-images`).

MLflow is kept out of the Airflow venv, so the main test run (.venv) cannot import it and
skips collecting this folder. `make test-images` sets MLOPS_REQUIRE_MLFLOW=1: there a missing
MLflow is an error, never a silent skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.net import free_port

# The test files that need .venv-mlflow (Makefile `test-images` runs exactly these).
MLFLOW_TEST_FILES = ["test_trainer_*.py", "test_mlflow_*.py"]

_HAVE_MLFLOW = (
    importlib.util.find_spec("mlflow") is not None
    and (Path(sys.executable).parent / "mlops-trainer").exists()
)

if not _HAVE_MLFLOW:
    if os.environ.get("MLOPS_REQUIRE_MLFLOW") == "1":
        raise RuntimeError(
            "tests/images need mlflow and the mlops-trainer console script: run them with "
            ".venv-mlflow/bin/pytest (make test-images builds it with make venv-mlflow)"
        )
    # Main test run in the Airflow venv: these tests run in `make test-images` instead.
    # (Only ours: other tests in this folder, e.g. the git server's, run in the main venv.)
    collect_ignore_glob = MLFLOW_TEST_FILES
else:
    from tests.images import procs


@dataclass
class MlflowServer:
    uri: str
    root: Path
    proc: subprocess.Popen
    log: Path


def _server_cmd(root: Path, port: int) -> list[str]:
    return [
        str(procs.BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root}/mlflow.db",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[MlflowServer]:
    """A real `mlflow server`: sqlite backend, local artifacts proxied with --serve-artifacts."""
    root = Path(tempfile.mkdtemp(prefix="mlflow-server-"))
    port = free_port()
    log = root / "server.log"
    env = procs.base_env(root)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # as the chart runs it (mlflow.jobExecution)
    with procs.running(
        _server_cmd(root, port), log, env, f"http://127.0.0.1:{port}/health", cwd=root
    ) as proc:
        yield MlflowServer(uri=f"http://127.0.0.1:{port}", root=root, proc=proc, log=log)
    shutil.rmtree(root, ignore_errors=True)
