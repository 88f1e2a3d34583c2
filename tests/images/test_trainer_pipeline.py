"""train -> register -> champion -> serve -> predict against a real MLflow server and model server."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from tests.images import procs
from tests.images.chart import local_command, model_server_container
from tests.images.trainer_cli import pipeline_args, pod_env, run_pipeline, summary, trainer
from tests.support.net import free_port
from tests.support.processes import running

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def model_name() -> str:
    return f"iris-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def runs(mlflow_server, model_name, tmp_path_factory):
    """Three pipeline runs: a good model, a worse one (dummy), then a better one."""
    home = tmp_path_factory.mktemp("home")
    env = pod_env(home, mlflow_server.uri)
    base = tmp_path_factory.mktemp("workspace")
    out = {}
    for label, model_type in (
        ("first", "logistic_regression"),
        ("worse", "dummy"),
        ("better", "gradient_boosting"),
    ):
        out[label] = run_pipeline(base / label, env, model_type=model_type, model_name=model_name)
        out[label]["workspace"] = base / label
    return out


@pytest.fixture(scope="module")
def client(mlflow_server) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_server.uri)


def test_prepare_writes_the_split(runs) -> None:
    prep = runs["first"]["prepare"]
    ws: Path = runs["first"]["workspace"]
    assert prep["dataset"] == "iris" and prep["rows_train"] + prep["rows_test"] == 150
    with open(ws / "data" / "test.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == prep["rows_test"]
    assert set(rows[0]) == {*prep["features"], "target"}


def test_run_has_params_metrics_tags_and_model(runs, client) -> None:
    trained = runs["first"]["train"]
    run = client.get_run(trained["run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "ml_training-manual__2026-01-01T00-00-00"
    assert run.data.params["model_type"] == "logistic_regression"
    assert run.data.params["max_iter"] == "500"
    assert run.data.params["dataset"] == "iris"
    metrics = run.data.metrics
    assert 0.9 <= metrics["train_accuracy"] <= 1.0
    assert metrics["test_accuracy"] == pytest.approx(runs["first"]["evaluate"]["metrics"]["test_accuracy"])
    assert metrics["test_accuracy"] > 0.85
    assert 0 < metrics["test_f1_macro"] <= 1
    tags = run.data.tags
    assert tags["airflow.dag_id"] == "ml_training"
    assert tags["mlops.profile"] == "cpu" and tags["mlops.gpus"] == "0"
    # No GPU on this machine: recorded as such (the check runs nvidia-smi / device files).
    assert tags["mlops.gpu.visible"] == "false" and tags["mlops.gpu.count"] == "0"
    assert tags["mlops.registered_version"].endswith("/1")
    model = client.get_logged_model(trained["model_id"])
    assert model.source_run_id == trained["run_id"]


def test_first_version_is_candidate_and_champion(runs, client, model_name) -> None:
    reg = runs["first"]["register"]
    assert reg["version"] == "1" and reg["champion"] is True and reg["previous_champion"] is None
    v1 = client.get_model_version(model_name, "1")
    assert v1.run_id == runs["first"]["train"]["run_id"]
    assert v1.status == "READY"
    assert v1.tags["mlops.registration"] == "complete"
    assert float(v1.tags["mlops.metric.test_accuracy"]) == pytest.approx(reg["value"])


def test_worse_model_does_not_take_champion(runs, client, model_name) -> None:
    worse = runs["worse"]["register"]
    assert worse["version"] == "2"
    assert worse["value"] < runs["first"]["register"]["value"]
    assert worse["champion"] is False and worse["aliases"] == ["candidate"]
    assert worse["previous_champion"]["version"] == "1"


def test_better_model_takes_champion(runs, client, model_name) -> None:
    better = runs["better"]["register"]
    assert better["version"] == "3"
    assert better["value"] > runs["first"]["register"]["value"], (
        "test data: gradient boosting must win on iris"
    )
    assert better["champion"] is True
    aliases = client.get_registered_model(model_name).aliases
    assert aliases == {"champion": "3", "candidate": "3"}


def test_register_retry_reuses_the_version(runs, mlflow_server, model_name, tmp_path, client) -> None:
    """An Airflow retry of `register` must not create a second version of the same run."""
    env = pod_env(tmp_path, mlflow_server.uri)
    again = summary(
        trainer(
            "register", runs["better"]["workspace"], pipeline_args("register", model_name=model_name), env
        )
    )
    assert again["version"] == "3" and again["reused_existing_version"] is True
    assert len(client.search_model_versions(f"name='{model_name}'")) == 3


@pytest.fixture(scope="module")
def batch_predict(runs, mlflow_server, model_name, tmp_path_factory) -> dict:
    """`mlops-trainer predict` with the champion, once per module (the serving tests compare
    the model server's answers with these batch predictions)."""
    ws = runs["first"]["workspace"]
    home = tmp_path_factory.mktemp("predict")
    env = pod_env(home, mlflow_server.uri)
    xcom = home / "airflow" / "xcom" / "return.json"
    out = summary(trainer("predict", ws, ["--model-name", model_name, "--xcom-file", str(xcom)], env))
    return {"out": out, "xcom": xcom, "csv": ws / "predictions.csv"}


def test_batch_predict_with_champion(runs, batch_predict, model_name) -> None:
    out = batch_predict["out"]
    assert json.loads(batch_predict["xcom"].read_text()) == out
    assert out["model_uri"] == f"models:/{model_name}@champion"
    assert out["rows"] == runs["first"]["prepare"]["rows_test"]
    assert out["accuracy"] == pytest.approx(runs["better"]["evaluate"]["metrics"]["test_accuracy"])
    with open(batch_predict["csv"]) as fh:
        assert {r["prediction"] for r in csv.DictReader(fh)} <= {"0", "1", "2"}


# --- model server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_server(runs, mlflow_server, model_name, tmp_path_factory):
    """The chart's serving Deployment command (`mlflow models serve -m models:/<name>@champion
    --env-manager local ...`), bound to 127.0.0.1 and pointed at the test tracking server."""
    _, container = model_server_container(model_name)
    assert container["readinessProbe"]["httpGet"]["path"] == "/ping"
    home = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = procs.base_env(home)
    env["MLFLOW_TRACKING_URI"] = mlflow_server.uri  # the in-cluster Service name does not resolve here
    cmd = local_command(container["command"], "-h", "-p", port)
    assert cmd[1:6] == ["models", "serve", "-m", f"models:/{model_name}@champion", "--env-manager"]
    with running(cmd, home / "serve.log", env, f"http://127.0.0.1:{port}/ping", timeout=120):
        yield f"http://127.0.0.1:{port}"


def _test_rows(ws: Path) -> tuple[list[str], list[list[float]], list[int]]:
    with open(ws / "data" / "test.csv") as fh:
        rows = list(csv.DictReader(fh))
    columns = [c for c in rows[0] if c != "target"]
    return columns, [[float(r[c]) for c in columns] for r in rows], [int(r["target"]) for r in rows]


def test_serving_dataframe_split(model_server, runs, batch_predict) -> None:
    columns, data, target = _test_rows(runs["first"]["workspace"])
    resp = requests.post(
        f"{model_server}/invocations",
        json={"dataframe_split": {"columns": columns, "data": data}},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    predictions = resp.json()["predictions"]
    assert len(predictions) == len(data)
    with open(batch_predict["csv"]) as fh:
        batch = [int(r["prediction"]) for r in csv.DictReader(fh)]
    assert predictions == batch, "the model server and batch predict disagree on the champion"
    accuracy = sum(p == t for p, t in zip(predictions, target, strict=True)) / len(target)
    assert accuracy == pytest.approx(runs["better"]["evaluate"]["metrics"]["test_accuracy"])


def test_serving_inputs_records(model_server, runs) -> None:
    columns, data, _ = _test_rows(runs["first"]["workspace"])
    records = [dict(zip(columns, row, strict=True)) for row in data[:5]]
    resp = requests.post(f"{model_server}/invocations", json={"inputs": records}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["predictions"]) == 5


@pytest.mark.parametrize(
    "body,content_type,expected",
    [
        ('{"dataframe_split": {"columns": ["nope"], "data": [[1.0]]}}', "application/json", "nope"),
        ('{"instances_typo": [[1, 2, 3, 4]]}', "application/json", "dataframe_split"),
        ("this is not json", "application/json", "json"),
    ],
    ids=["unknown-column", "unknown-key", "not-json"],
)
def test_serving_rejects_malformed_payload(model_server, body, content_type, expected) -> None:
    resp = requests.post(
        f"{model_server}/invocations", data=body, headers={"Content-Type": content_type}, timeout=30
    )
    assert resp.status_code == 400, resp.text
    message = resp.json()["message"]
    assert expected.lower() in message.lower(), message
