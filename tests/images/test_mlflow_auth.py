"""Authenticated by default, run for real: the chart's MLflow Deployment (auth-config init
container, then `mlflow server --app-name basic-auth` with the admin credential from the
environment) answers 401 without a credential and 200 with it, and the whole pipeline -
trainer CLI train -> register -> champion, then the chart's model-server command - works with
the client credential the pod templates and model servers get (MLFLOW_TRACKING_USERNAME/
PASSWORD), while the same steps without it fail with a message naming the credential.

Only what cannot exist here is replaced: bind address and port, the volume paths (/mlflow and
/tmp -> temporary directories) and the values of the Secrets (given as environment)."""

from __future__ import annotations

import base64
import subprocess
import uuid

import pytest
import requests

from tests.images import procs
from tests.images.chart import local_command, render_template
from tests.images.trainer_cli import pipeline_args, pod_env, run_pipeline, trainer
from tests.support.net import free_port
from tests.support.processes import running

pytestmark = pytest.mark.processes

ADMIN, PASSWORD = "admin", "a-long-admin-password-0123"
SECRETS = {  # the Secret mlflow-auth, as kubelet resolves secretKeyRef
    ("mlflow-auth", "username"): ADMIN,
    ("mlflow-auth", "password"): PASSWORD,
    ("mlflow-auth", "flask-secret-key"): "flask-key-0123456789abcdef",
}
API = "/api/2.0/mlflow/experiments/search?max_results=1"


def resolve_env(items: list[dict], root) -> dict[str, str]:
    env = {}
    for item in items:
        if "value" in item:
            if item["name"] == "HOME":
                continue
            value = item["value"]
            if value.startswith("/tmp/"):
                value = f"{root}/tmp/" + value.removeprefix("/tmp/")
            env[item["name"]] = value.replace("/mlflow/", f"{root}/data/", 1)
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = SECRETS[(ref["name"], ref["key"])]
    return env


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    (dep,) = render_template("templates/mlflow/mlflow-deployment.yaml", {"mlflow": {"workers": 1}})
    spec = dep["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    (container,) = spec["containers"]
    assert container["command"][container["command"].index("--app-name") + 1] == "basic-auth"
    root = tmp_path_factory.mktemp("auth-server")
    (root / "data").mkdir()
    (root / "tmp").mkdir()
    # The init container: writes the ini the basic-auth app reads (its user store's database URI).
    init_env = {**procs.base_env(root), **resolve_env(init["env"], root)}
    done = subprocess.run(
        [str(procs.BIN / "python"), *init["command"][1:]], env=init_env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    ini = (root / "tmp" / "basic_auth.ini").read_text()
    assert f"database_uri = sqlite:///{root}/data/mlflow.db" in ini, ini
    assert "admin" not in ini and PASSWORD not in ini  # credentials stay in the environment
    port = free_port()
    cmd = local_command(container["command"], "--host", "--port", port)
    cmd = [a.replace("/mlflow/", f"{root}/data/", 1) for a in cmd]
    env = {**procs.base_env(root), **resolve_env(container["env"], root)}
    with running(cmd, root / "server.log", env, f"http://127.0.0.1:{port}/health", cwd=root):
        yield f"http://127.0.0.1:{port}"


def test_api_and_ui_need_a_credential(auth_server) -> None:
    assert requests.get(auth_server + API, timeout=10).status_code == 401
    assert requests.get(auth_server + "/", timeout=10).status_code == 401
    assert requests.get(auth_server + API, auth=(ADMIN, "wrong-password-123"), timeout=10).status_code == 401
    assert requests.get(auth_server + "/health", timeout=10).status_code == 200  # kubelet probes
    ok = requests.get(auth_server + API, auth=(ADMIN, PASSWORD), timeout=10)
    assert ok.status_code == 200, ok.text


def test_alias_cannot_be_moved_without_a_credential(auth_server) -> None:
    resp = requests.post(
        auth_server + "/api/2.0/mlflow/registered-models/alias",
        json={"name": "iris", "alias": "champion", "version": "1"},
        timeout=10,
    )
    assert resp.status_code == 401


def test_trainer_without_credential_fails_naming_it(auth_server, tmp_path) -> None:
    env = pod_env(tmp_path, auth_server)
    (tmp_path / "ws").mkdir()
    done = trainer("prepare", tmp_path / "ws", pipeline_args("prepare"), env)
    assert done.returncode == 0, done.stderr  # no MLflow call
    done = trainer("train", tmp_path / "ws", pipeline_args("train"), env)
    assert done.returncode == 4, done.stderr
    assert "MLFLOW_TRACKING_USERNAME" in done.stderr and "401" in done.stderr, done.stderr


def client_env(home, uri: str) -> dict[str, str]:
    """The task pod's env: the pod templates' MLFLOW_TRACKING_USERNAME/PASSWORD (client Secret)."""
    (pod,) = [
        o for o in render_template("templates/pod-templates/pod-templates-configmap.yaml", {})
    ]
    import yaml

    cpu = yaml.safe_load(pod["data"]["cpu.yaml"])
    env = pod_env(home, uri)
    for item in cpu["spec"]["containers"][0]["env"]:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = SECRETS[(ref["name"], ref["key"])]
    assert {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} <= set(env)
    return env


def test_train_register_serve_with_the_credential(auth_server, tmp_path_factory) -> None:
    name = f"iris-auth-{uuid.uuid4().hex[:8]}"
    home = tmp_path_factory.mktemp("home")
    env = client_env(home, auth_server)
    out = run_pipeline(tmp_path_factory.mktemp("ws"), env, model_name=name)
    assert out["register"]["champion"] is True, out["register"]
    version = requests.get(
        auth_server + "/api/2.0/mlflow/registered-models/alias",
        params={"name": name, "alias": "champion"},
        auth=(ADMIN, PASSWORD),
        timeout=10,
    )
    assert version.status_code == 200, version.text

    # The chart's model server with its env (client credential from the Secret).
    values = {"serving": {"enabled": True, "domain": "models.example.com",
                          "models": [{"name": name, "modelUri": f"models:/{name}@champion"}]}}
    (dep,) = render_template("templates/serving/serving-deployment.yaml", values)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    serve_home = tmp_path_factory.mktemp("serve")
    serve_env = {**procs.base_env(serve_home), **resolve_env(container["env"], serve_home)}
    serve_env["MLFLOW_TRACKING_URI"] = auth_server
    port = free_port()
    cmd = local_command(container["command"], "-h", "-p", port)
    with running(cmd, serve_home / "serve.log", serve_env, f"http://127.0.0.1:{port}/ping", timeout=120):
        resp = requests.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"inputs": [{"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4, "petal_width_cm": 0.2}]},
            timeout=30,
        )
    assert resp.status_code == 200, resp.text
    assert resp.json()["predictions"] == [0]


def test_model_server_without_credential_cannot_load_the_model(auth_server, tmp_path) -> None:
    """Without MLFLOW_TRACKING_USERNAME/PASSWORD the model download is refused (401)."""
    env = procs.base_env(tmp_path)
    env["MLFLOW_TRACKING_URI"] = auth_server
    env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    done = subprocess.run(
        [str(procs.BIN / "python"), "-c",
         "import mlflow; mlflow.MlflowClient().search_registered_models(max_results=1)"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "401" in done.stderr or "Unauthorized" in done.stderr or "credentials" in done.stderr.lower(), done.stderr[-800:]


def test_ingress_auth_annotations_on_model_endpoints() -> None:
    values = {"serving": {"enabled": True, "domain": "models.example.com",
                          "models": [{"name": "iris", "modelUri": "models:/iris@champion"}]}}
    (ing,) = render_template("templates/serving/serving-ingress.yaml", values)
    ann = ing["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/auth-type"] == "basic"
    assert ann["nginx.ingress.kubernetes.io/auth-secret"] == "model-serving-auth"
    values["serving"]["auth"] = {"enabled": False}
    (ing,) = render_template("templates/serving/serving-ingress.yaml", values)
    assert "nginx.ingress.kubernetes.io/auth-type" not in (ing["metadata"].get("annotations") or {})


def test_auth_off_is_explicit() -> None:
    (dep,) = render_template("templates/mlflow/mlflow-deployment.yaml", {"mlflow": {"auth": {"enabled": False}}})
    spec = dep["spec"]["template"]["spec"]
    assert "initContainers" not in spec
    assert "--app-name" not in spec["containers"][0]["command"]
    names = {e["name"] for e in spec["containers"][0]["env"]}
    assert not names & {"MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"}


def test_basic_header_of_the_dags_rest_client(auth_server, monkeypatch) -> None:
    """dags/mlops_platform/mlflow_rest.py (Airflow side, standard library only) with the
    credential Airflow's components get from airflow.secret."""
    import importlib.util

    from tests.support import paths

    spec = importlib.util.spec_from_file_location("mlflow_rest", paths.REPO / "dags" / "mlops_platform" / "mlflow_rest.py")
    rest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rest)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    with pytest.raises(rest.MlflowRestError, match="HTTP 401.*no credential"):
        rest.call(auth_server, "GET", "experiments/search", {"max_results": 1})
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    assert rest.auth_headers()["Authorization"] == "Basic " + base64.b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode()
    assert "experiments" in rest.call(auth_server, "GET", "experiments/search", {"max_results": 1})
