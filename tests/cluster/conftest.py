"""Control-plane tier: one local control plane (scripts/cluster-up) for the whole session.

kwok nodes run no containers (see tests/support/cluster.py for what is simulated). The tier runs
in its own pytest process without xdist (`make test-cluster`, called by `make test`): xdist
would spread the files over workers, each starting its own control plane on the same ports.
"""

from __future__ import annotations

import os

import pytest

# The session fixture ``cluster`` (tests/support/cluster.py) is defined in tests/conftest.py:
# the end-to-end suite on the real node (tests/kind, provider realnode) shares the same one.


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under an xdist worker, skip (with the reason) instead of starting one control plane per worker."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    skip = pytest.mark.skip(reason="tests/cluster runs in one process: `make test-cluster` (part of `make test`)")
    for item in items:
        if "tests/cluster/" in item.nodeid.replace("\\", "/") or item.nodeid.startswith("cluster/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster_report(request) -> list[str]:
    """Lines the tests want in the terminal summary (timings, the RBAC table, Pod Security levels)."""
    return request.config._mlops_cluster_report


def pytest_configure(config: pytest.Config) -> None:
    config._mlops_cluster_report = []


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    lines = getattr(config, "_mlops_cluster_report", [])
    if lines:
        terminalreporter.section("control-plane tier: what the API server decided")
        for line in lines:
            terminalreporter.write_line(line)
