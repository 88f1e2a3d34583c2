"""Repository-wide pytest fixtures and markers."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Airflow reads its home at import time: keep it out of ~/airflow and away from any DB. The
# session that makes it (xdist workers inherit it) removes it when it exits.
if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-")
    atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import paths  # noqa: E402
from tests.support.cluster import cluster_fixture  # noqa: E402

# The control-plane tier's session cluster (started only by the tests that ask for it): one for
# tests/cluster and the end-to-end suite's provider realnode (tests/kind) in the same session.
cluster = cluster_fixture()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Every chart, values and DAG test renders the umbrella: no official chart, no session."""
    if not paths.official_chart_present():
        raise pytest.UsageError(paths.SUBCHART_MISSING_REASON)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        "airflow-mlops chart rendering: the umbrella with the official Airflow chart "
        f"{paths.OFFICIAL_CHART_VERSION}",
        f"kubernetes versions: {', '.join(paths.KUBE_VERSIONS)}",
    ]


# Inside `make test` a skip is a failure (tests/support/make_test.py).
from tests.support.make_test import pytest_make_collect_report, pytest_runtest_makereport  # noqa: E402,F401
