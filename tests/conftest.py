"""Repository-wide pytest fixtures and markers."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# Airflow reads its home at import time: keep it out of ~/airflow and away from any DB.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import paths  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests that need the official chart when it is not downloaded, with the reason."""
    if paths.official_chart_present():
        return
    skip = pytest.mark.skip(reason=paths.SUBCHART_MISSING_REASON)
    for item in items:
        if "subchart" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> list[str]:
    mode = (
        "umbrella (official chart present)"
        if paths.official_chart_present()
        else "platform layer alone (official chart absent: no internet for `make deps`)"
    )
    return [
        f"airflow-mlops chart rendering: {mode}",
        f"kubernetes versions: {', '.join(paths.KUBE_VERSIONS)}",
    ]
