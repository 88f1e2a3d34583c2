"""Real-process tests of images/: they run in .venv-mlflow (`make test-images`).

MLflow is kept out of the Airflow venv, so the main test run (.venv) cannot import it and
skips collecting this folder. `make test-images` sets MLOPS_REQUIRE_MLFLOW=1: there a missing
MLflow is an error, never a silent skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.images import procs
from tests.support import mlflow_server as mlflow_support

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


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[mlflow_support.MlflowServer]:
    """A real `mlflow server`: sqlite backend, local artifacts proxied with --serve-artifacts."""
    root = Path(tempfile.mkdtemp(prefix="mlflow-server-"))
    with mlflow_support.mlflow_server(procs.BIN, root) as server:
        yield server
    shutil.rmtree(root, ignore_errors=True)
