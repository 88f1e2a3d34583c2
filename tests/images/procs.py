"""The programs of .venv-mlflow (this interpreter's bin/: mlflow, mlops-trainer) and a pod-like
environment for them. Starting and stopping servers: tests/support/processes.py."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support import processes

BIN = Path(sys.executable).parent  # .venv-mlflow/bin: mlflow, mlops-trainer


def base_env(home: Path) -> dict[str, str]:
    """A clean environment like a pod's: no inherited MLflow/Python settings."""
    return processes.clean_env(home, BIN)
