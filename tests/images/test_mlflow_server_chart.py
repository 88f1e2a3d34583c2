"""The chart's MLflow server command and environment, run for real: MLflow 3.17.2 accepts the
rendered options, serves the UI and API behind the ingress host and the in-cluster Service
names, and rejects foreign Host headers and cross-site writes.

Only what cannot exist here is replaced: the bind address (0.0.0.0 -> 127.0.0.1), the port
and the volume paths (/mlflow -> a temporary directory)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.images import procs
from tests.images.chart import local_command, render_template
from tests.support.net import free_port
from tests.support.processes import running

pytestmark = pytest.mark.processes

REL, NS = "mlops", "mlops"
SVC = "mlops-airflow-mlops-mlflow"
HOST = "mlflow.example.com"


@pytest.fixture(scope="module")
def chart_server(tmp_path_factory):
    # Authentication (on by default) has its own real-server test: tests/images/test_mlflow_auth.py.
    values = {
        "mlflow": {
            "ingress": {"enabled": True, "host": HOST, "tls": {"enabled": True}},
            "workers": 1,
            "auth": {"enabled": False},
        }
    }
    (dep,) = render_template("templates/mlflow/mlflow-deployment.yaml", values)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    root = tmp_path_factory.mktemp("chart-server")
    port = free_port()
    cmd = local_command(container["command"], "--host", "--port", port)
    cmd = [a.replace("/mlflow/", f"{root}/", 1) for a in cmd]
    env = procs.base_env(root)
    for item in container["env"]:
        if "value" in item and item["name"] != "HOME":
            env[item["name"]] = item["value"].replace("/mlflow/", f"{root}/", 1)
    assert env["MLFLOW_BACKEND_STORE_URI"] == f"sqlite:///{root}/mlflow.db"
    with running(cmd, root / "server.log", env, f"http://127.0.0.1:{port}/health", cwd=root) as proc:
        yield f"http://127.0.0.1:{port}", root, proc


def get(base: str, path: str, host: str, **kw) -> requests.Response:
    return requests.get(base + path, headers={"Host": host, **kw.pop("headers", {})}, timeout=10, **kw)


@pytest.mark.parametrize(
    "host",
    [
        HOST,
        f"{HOST}:443",
        f"{SVC}.{NS}.svc.cluster.local:5000",
        f"{SVC}:5000",
        "localhost:5000",
        "10.244.0.12:5000",
        "100.96.3.4:5000",
        "[fd00:10:244::5]:5000",
    ],
)
def test_allowed_hosts_reach_api_and_ui(chart_server, host: str) -> None:
    base, _, _ = chart_server
    api = get(base, "/api/2.0/mlflow/experiments/search?max_results=1", host)
    assert api.status_code == 200, (host, api.status_code, api.text[:200])
    ui = get(base, "/", host)
    assert ui.status_code == 200 and "<html" in ui.text.lower(), (host, ui.status_code)


@pytest.mark.parametrize("host", ["10.244.0.12:5000", "100.96.3.4:5000", "[fd00:10:244::5]:5000",
                                  "[2001:db8::5]:5000", "8.8.8.8:5000"])
def test_the_probes_path_answers_whatever_the_pod_ip(chart_server, host: str) -> None:
    """The kubelet sends the pod's IP as the Host header of an httpGet probe: whatever the pod
    network (RFC 1918, 100.64.0.0/10, IPv6), the chart's probe path answers, so the pod becomes
    Ready (MLflow exempts its health endpoints from the Host check)."""
    (dep,) = render_template("templates/mlflow/mlflow-deployment.yaml", {"mlflow": {"auth": {"enabled": False}}})
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    paths = {container[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")}
    base, _, _ = chart_server
    for path in paths:
        resp = get(base, path, host)
        assert resp.status_code == 200, (path, host, resp.status_code, resp.text[:200])


@pytest.mark.parametrize("host", ["evil.example.net", f"{HOST}.evil.net", "8.8.8.8:5000", "[2001:db8::5]:5000"])
def test_foreign_host_header_is_rejected(chart_server, host: str) -> None:
    base, _, _ = chart_server
    resp = get(base, "/api/2.0/mlflow/experiments/search?max_results=1", host)
    assert resp.status_code == 403
    assert "Invalid Host header" in resp.text


def test_ui_origin_may_write_foreign_origin_may_not(chart_server) -> None:
    base, _, _ = chart_server
    url = base + "/api/2.0/mlflow/experiments/create"
    ok = requests.post(
        url, json={"name": "from-ui"}, headers={"Host": HOST, "Origin": f"https://{HOST}"}, timeout=10
    )
    assert ok.status_code == 200, ok.text
    bad = requests.post(
        url,
        json={"name": "from-evil"},
        headers={"Host": HOST, "Origin": "https://evil.example.net"},
        timeout=10,
    )
    assert bad.status_code == 403


def test_artifacts_are_proxied_to_the_volume(chart_server) -> None:
    """--serve-artifacts with the rendered destination: a client logs an artifact over HTTP only."""
    import mlflow

    base, root, _ = chart_server
    client = mlflow.MlflowClient(tracking_uri=base)
    exp = client.create_experiment("artifacts-check")
    run = client.create_run(exp)
    src = root / "note.txt"
    src.write_text("hello")
    client.log_artifact(run.info.run_id, str(src))
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    stored = list((root / "artifacts").rglob("note.txt"))
    assert stored and stored[0].read_text() == "hello"


def test_job_runner_is_off(chart_server) -> None:
    """mlflow.jobExecution.enabled=false: no huey job runner (measured: 10 processes and ~1.9 GB
    RSS with it, 2 processes and ~0.5 GB without)."""
    _, _, proc = chart_server
    group = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == proc.pid:  # field 5 of /proc/<pid>/stat: process group
            group.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    assert group, "server process group not found"
    assert not any("huey" in cmd or "_job_runner" in cmd for cmd in group), group
    assert len(group) <= 3, group
