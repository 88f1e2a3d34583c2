"""The pipeline's containers end to end, on 127.0.0.1 with host networking:

the mlflow image serves tracking with the chart's rendered command, env and security context;
the trainer image runs prepare -> train_cpu -> evaluate -> register of dags/ml_training.py
exactly as the task pods run it (the pods built by the provider from the chart's pod templates
with values/kind.yaml: argv, env, user, read-only root, workspace sub-path) against that server;
the mlflow image then runs the chart's model-server command on the registered champion and
answers /invocations. Only what cannot exist here is replaced: the bind address
(0.0.0.0 -> 127.0.0.1) and ports, the in-cluster Service name of MLflow (-> 127.0.0.1:<port>),
volumes (-> temporary directories). Base images may be STAND-INS (see conftest.py).
"""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import pytest
import requests

from tests.images.chart import model_server_container, render_template
from tests.images.docker import engine
from tests.images.docker.platform import load_dagbag
from tests.support.airflow_pods import build_pod
from tests.support.net import free_port
from tests.support.processes import http_ok

RUN_ID = "manual__2026-02-03T04:05:06+00:00"


def _bind(argv: list[str], host_flag: str, port_flag: str, port: int) -> list[str]:
    argv = list(argv)
    argv[argv.index(host_flag) + 1] = "127.0.0.1"
    argv[argv.index(port_flag) + 1] = str(port)
    return argv


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)  # the volume is written by the pod's uid
    return path


@pytest.fixture(scope="module")
def mlflow_container(built_images, tmp_path_factory):
    # Authentication off here: the basic-auth app and the clients' credential are tested with the
    # real server in tests/images/test_mlflow_auth.py; this tier checks the image runs the command.
    values = {"mlflow": {"workers": 1, "auth": {"enabled": False}}}
    (dep,) = render_template("templates/mlflow/mlflow-deployment.yaml", values)
    spec = dep["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    data = _dir(tmp_path_factory.mktemp("mlflow-data"))
    port = free_port()
    run = engine.from_pod(
        spec, container, engine.image("mlflow"), {"data": data},
        argv=_bind(container["command"], "--host", "--port", port),
    )  # fmt: skip
    assert run.read_only and run.user == "10001:10001" and run.cap_drop_all
    uri = f"http://127.0.0.1:{port}"
    with engine.serving(run, http_ok(f"{uri}/health"), f"mlops-test-mlflow-{port}") as cid:
        yield {"uri": uri, "data": data, "cid": cid}


@pytest.fixture(scope="module")
def training(mlflow_container, kind_env, tmp_path_factory):
    """The four ml_training task pods, each one `docker run` of the trainer image."""
    bag = load_dagbag(kind_env)
    assert bag.import_errors == {}
    dag = bag.dags["ml_training"]
    workspace = _dir(tmp_path_factory.mktemp("workspace"))
    model = f"iris-{uuid.uuid4().hex[:6]}"
    out = {"model": model, "workspace": workspace}
    for task_id in ("prepare", "train_cpu", "evaluate", "register"):
        conf = {"model_name": model}
        with kind_env.active():
            pod = build_pod(dag, dag.get_task(task_id), run_id=RUN_ID, conf=conf)
        spec = pod["spec"]
        (container,) = spec["containers"]
        assert container["image"] == engine.image("trainer"), "values/kind.yaml runs the image built here"
        run = engine.from_pod(
            spec, container, container["image"], {"workspace": workspace},
            env={"MLFLOW_TRACKING_URI": mlflow_container["uri"]},
        )  # fmt: skip
        assert run.read_only and run.user == "1000:1000", "the task pods' security context"
        proc = engine.run_once(run)
        assert proc.returncode == 0, f"{task_id} {run.argv}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
        out[task_id] = json.loads(proc.stdout.strip().splitlines()[-1])
        out[f"{task_id}_argv"] = run.argv
        out["subpath"] = workspace / run.env["MLOPS_WORKSPACE_SUBPATH"]
    return out


def test_training_pods_ran_in_the_trainer_image(training, mlflow_container) -> None:
    assert training["prepare_argv"][:2] == ["mlops-trainer", "prepare"]
    assert training["prepare"]["dataset"] == "iris"
    assert 0.85 < training["evaluate"]["metrics"]["test_accuracy"] <= 1.0
    reg = training["register"]
    assert reg["version"] == "1" and reg["champion"] is True
    # the steps handed over through the run's workspace sub-path, written as uid 1000
    assert (training["subpath"] / "register.json").is_file()
    assert (training["subpath"] / "data" / "train.csv").stat().st_uid == 1000
    # the model went through the server's artifact proxy onto its volume
    assert list((mlflow_container["data"] / "artifacts").rglob("MLmodel"))
    run = requests.get(
        f"{mlflow_container['uri']}/api/2.0/mlflow/runs/get",
        params={"run_id": training["train_cpu"]["run_id"]}, timeout=10,
    ).json()["run"]  # fmt: skip
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlops.profile"] == "cpu" and tags["airflow.dag_id"] == "ml_training"


@pytest.fixture(scope="module")
def model_server(training, mlflow_container):
    model = training["model"]
    spec, container = model_server_container(model)
    port = free_port()
    run = engine.from_pod(
        spec, container, engine.image("mlflow"), {},
        argv=_bind(container["command"], "-h", "-p", port),
        env={"MLFLOW_TRACKING_URI": mlflow_container["uri"]},
    )  # fmt: skip
    assert run.argv[:5] == ["mlflow", "models", "serve", "-m", f"models:/{model}@champion"]
    assert run.read_only, "the chart runs model servers with a read-only root filesystem"
    url = f"http://127.0.0.1:{port}"
    with engine.serving(run, http_ok(f"{url}/ping"), f"mlops-test-serve-{port}", timeout=180):
        yield url


def test_model_server_answers_invocations(model_server, training) -> None:
    with open(training["subpath"] / "data" / "test.csv") as fh:
        rows = list(csv.DictReader(fh))
    columns = [c for c in rows[0] if c != "target"]
    data = [[float(r[c]) for c in columns] for r in rows]
    resp = requests.post(
        f"{model_server}/invocations", json={"dataframe_split": {"columns": columns, "data": data}}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    predictions = resp.json()["predictions"]
    accuracy = sum(p == int(r["target"]) for p, r in zip(predictions, rows, strict=True)) / len(rows)
    assert accuracy == pytest.approx(training["evaluate"]["metrics"]["test_accuracy"])
    bad = requests.post(f"{model_server}/invocations", data="not json",
                        headers={"Content-Type": "application/json"}, timeout=30)  # fmt: skip
    assert bad.status_code == 400
