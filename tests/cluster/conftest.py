"""Control-plane tier: one local control plane (scripts/cluster-up) for the whole session.

kwok nodes run no containers (see tests/support/cluster.py for what is simulated). The tier runs
in its own pytest process without xdist (`make test-cluster`, called by `make test`): xdist
would spread the files over workers, each starting its own control plane on the same ports.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.cluster import pipelines as pl

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


# --- the pipeline modules' Airflow (test_pipelines.py, test_yaml_pipelines.py: each defines its own
# module-scoped `platform`, the release the DAGs run against) ---------------------------------------

@pytest.fixture(scope="module")
def airflow(platform):
    """Airflow's env for the module (platform files, the launcher kubeconfig as connection
    kubernetes_default and KUBECONFIG for ml_serving's client), the migrated DB, the GPU pool,
    the DAGs parsed from the copied folder."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MLOPS_PLATFORM_DIR", str(platform.directory))
    mp.setenv("MLOPS_POD_TEMPLATES_DIR", str(platform.templates_dir))
    mp.setenv("KUBECONFIG", str(platform.kubeconfig))
    # the kubernetes client read KUBECONFIG at import (before this fixture): ml_serving's
    # load_kube_config() fallback (in a pod: load_incluster_config) must find the launcher's
    import kubernetes.config.kube_config as kube_config

    mp.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(platform.kubeconfig))
    mp.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(platform.kubeconfig), "in_cluster": False}}))
    folder = pl.airflow_dag_folder()
    if str(folder) not in sys.path:
        mp.syspath_prepend(str(folder))
    pl.ensure_pool(*platform.gpu_pool)
    from airflow.models.dagbag import DagBag

    bag = DagBag(str(folder), include_examples=False, safe_mode=False)
    assert bag.import_errors == {}, bag.import_errors
    yield bag
    mp.undo()


@pytest.fixture(scope="module")
def observed(cluster_report):
    """Lines for the terminal summary: each pipeline's pods (node, GPUs, phases)."""
    lines: list[str] = []
    yield lines
    if lines:
        cluster_report.append("pipelines on the control plane (pods: task[map] try -> node, GPUs, phases):")
        cluster_report.extend(lines)
