"""Fixtures of the end-to-end tests, for either cluster provider (tests/kind/providers.py).

MLOPS_E2E_PROVIDER=kind (default, `make kind-test`): they run in .venv-kind
(requirements/kind.lock: pytest-helm-charts, whose `kube_cluster` fixture connects to the
cluster of KUBECONFIG) against the cluster `make kind-up` made. Without a Docker engine (or
outside .venv-kind, or before kind-up) every test here is collected and skipped with a one-line
reason.

MLOPS_E2E_PROVIDER=realnode (`make test-cluster`, part of `make test`): the control-plane tier's
session cluster (the ``cluster`` fixture of tests/conftest.py, shared with tests/cluster) and its
real node; the provider installs the platform there first. Never skipped: what cannot run fails.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kind import providers, support

KIND_DIR = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def skip_reason() -> str | None:
    """Why the kind tests cannot run here (None: they can; always None for provider realnode)."""
    if providers.name() == "realnode":
        return None
    where = "the kind tests run with `make kind-test` on a machine with Docker"
    if not shutil.which("docker"):
        return f"no Docker engine (docker CLI not installed): {where}"
    try:
        answered = subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        answered = False
    if not answered:
        return f"no Docker engine answers (`docker info` failed): {where}"
    try:
        import pytest_helm_charts  # noqa: F401
    except ImportError:
        return "pytest-helm-charts is not in this venv: run `make kind-test` (it uses .venv-kind)"
    if not Path(support.kubeconfig()).is_file():
        return f"no kubeconfig of the kind cluster at {support.kubeconfig()}: run `make kind-up` first"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = skip_reason()
    for item in items:
        if KIND_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.kind)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def _kubeconfig_env() -> None:
    """pytest-helm-charts reads KUBECONFIG; default to the one kind-up writes."""
    if providers.name() == "kind":
        os.environ.setdefault("KUBECONFIG", support.kubeconfig())


@pytest.fixture(scope="session")
def provider(request: pytest.FixtureRequest) -> Iterator[providers.Provider]:
    """Where the suite runs: kind's cluster, or the platform installed on the tier's real node."""
    if providers.name() == "kind":
        yield providers.kind()
        return
    with providers.realnode(request.getfixturevalue("cluster")) as found:
        request.config._mlops_e2e_figures = found.figures
        yield found


@pytest.fixture(scope="module")
def k8s(request: pytest.FixtureRequest, provider: providers.Provider) -> support.Kube:
    """The cluster: pytest-helm-charts' kube_cluster (pykube client + kubectl) on kind, kubectl
    alone on the real node's tier."""
    if provider.name == "kind":
        return support.Kube(request.getfixturevalue("kube_cluster"))
    return support.KubectlKube()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    figures = getattr(config, "_mlops_e2e_figures", None)
    if figures:
        terminalreporter.section(f"end-to-end suite, provider {providers.name()}: figures")
        for line in figures:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def platform(k8s: support.Kube) -> dict[str, Any]:
    """platform.json as the chart rendered it into the cluster."""
    cm = k8s.kubectl(f"get configmap {support.FULLNAME}-platform", namespace=support.NAMESPACE)
    return json.loads(cm["data"]["platform.json"])


def _secret(k8s: support.Kube, name: str, key: str, namespace: str = support.NAMESPACE) -> str:
    secret = k8s.kubectl(f"get secret {name}", namespace=namespace)
    return base64.b64decode(secret["data"][key]).decode()


@pytest.fixture(scope="module")
def airflow(k8s: support.Kube) -> Iterator[support.Airflow]:
    """The Airflow REST API (/api/v2) through a port-forward, with a JWT from /auth/token."""
    password = _secret(k8s, "mlops-kind-admin", "password")
    with support.port_forward(f"svc/{support.RELEASE}-api-server", 8080) as port:
        yield support.Airflow(f"http://127.0.0.1:{port}", "admin", password)


@pytest.fixture(scope="module")
def mlflow_url(k8s: support.Kube, platform: dict[str, Any]) -> Iterator[str]:
    """The MLflow tracking server (platform.json mlflow.trackingUri) through a port-forward."""
    service, port = support.service_of(platform["mlflow"]["trackingUri"])
    with support.port_forward(f"svc/{service}", port) as local:
        yield f"http://127.0.0.1:{local}"


@pytest.fixture(scope="module")
def mlflow_auth(k8s: support.Kube) -> tuple[str, str]:
    """The platform's MLflow credential (Secret mlflow-auth, made by kind-up)."""
    return _secret(k8s, "mlflow-auth", "username"), _secret(k8s, "mlflow-auth", "password")


@pytest.fixture(scope="module")
def serving_auth(k8s: support.Kube, platform: dict[str, Any]) -> tuple[str, str]:
    """The model endpoints' ingress basic auth (Secret model-serving-auth, made by kind-up in
    the serving namespace, where ingress-nginx reads it)."""
    return "kind", _secret(k8s, "model-serving-auth", "password", platform["serving"]["namespace"])


@pytest.fixture(scope="module")
def pusher_key(k8s: support.Kube, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kind-up's push key for the in-cluster git server (Secret git-server-pusher)."""
    path = tmp_path_factory.mktemp("pusher") / "id_ed25519"
    path.write_text(_secret(k8s, "git-server-pusher", "id_ed25519"))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def git_host_key(k8s: support.Kube) -> str:
    return _secret(k8s, "git-server-host-keys", "ssh_host_ed25519_key.pub").strip()
