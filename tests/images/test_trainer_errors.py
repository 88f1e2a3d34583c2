"""Bad input to the trainer CLI: a clear message, a distinct non-zero exit, nothing half-registered."""

from __future__ import annotations

import shutil
import time
import uuid

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.images.trainer_cli import pipeline_args, pod_env, summary, trainer
from tests.support.net import free_port

pytestmark = pytest.mark.processes

EXIT_USAGE, EXIT_WORKSPACE, EXIT_TRACKING = 2, 3, 4


@pytest.fixture
def env(mlflow_server, tmp_path):
    return pod_env(tmp_path / "home", mlflow_server.uri)


@pytest.fixture(scope="module")
def prepared_once(mlflow_server, tmp_path_factory):
    ws = tmp_path_factory.mktemp("prepared")
    summary(trainer("prepare", ws, pipeline_args("prepare"), pod_env(ws.parent / "home", mlflow_server.uri)))
    return ws


@pytest.fixture
def prepared(prepared_once, tmp_path):
    """A fresh copy of a prepared workspace per test (prepare runs once per module)."""
    ws = tmp_path / "ws"
    shutil.copytree(prepared_once, ws)
    return ws


def test_missing_workspace(tmp_path, env) -> None:
    proc = trainer("prepare", tmp_path / "absent", pipeline_args("prepare"), env)
    assert proc.returncode == EXIT_WORKSPACE
    assert "workspace" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_model_type(prepared, env) -> None:
    proc = trainer("train", prepared, pipeline_args("train", model_type="deep_forest"), env)
    assert proc.returncode == EXIT_USAGE
    assert "invalid choice: 'deep_forest'" in proc.stderr and "logistic_regression" in proc.stderr
    assert not (prepared / "train.json").exists()


def test_unknown_model_parameter(prepared, env) -> None:
    proc = trainer("train", prepared, ["--model-type", "knn", "--param", "max_depth=3"], env)
    assert proc.returncode == EXIT_USAGE
    assert "has no parameter(s) max_depth" in proc.stderr and "n_neighbors" in proc.stderr


def test_invalid_model_parameter_value(prepared, env) -> None:
    proc = trainer("train", prepared, ["--model-type", "knn", "--param", "n_neighbors=-3"], env)
    assert proc.returncode == EXIT_USAGE
    assert "n_neighbors" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_evaluate_before_train(prepared, env) -> None:
    proc = trainer("evaluate", prepared, [], env)
    assert proc.returncode == EXIT_WORKSPACE
    assert "`evaluate` needs the output of `train`" in proc.stderr
    assert "mlops-trainer train --workspace" in proc.stderr


def test_train_before_prepare(tmp_path, env) -> None:
    ws = tmp_path / "empty"
    ws.mkdir()
    proc = trainer("train", ws, pipeline_args("train"), env)
    assert proc.returncode == EXIT_WORKSPACE
    assert "`train` needs the output of `prepare`" in proc.stderr


def test_register_before_evaluate(prepared, env, mlflow_server) -> None:
    name = f"never-{uuid.uuid4().hex[:6]}"
    summary(trainer("train", prepared, pipeline_args("train"), env))
    proc = trainer("register", prepared, pipeline_args("register", model_name=name), env)
    assert proc.returncode == EXIT_WORKSPACE
    assert "`register` needs the output of `evaluate`" in proc.stderr
    with pytest.raises(MlflowException):
        MlflowClient(mlflow_server.uri).get_registered_model(name)


def test_unreachable_tracking_uri_fails_fast(prepared, tmp_path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = pod_env(tmp_path / "home", dead)
    started = time.monotonic()
    proc = trainer("train", prepared, pipeline_args("train"), env, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == EXIT_TRACKING
    assert f"MLflow tracking server {dead} is unreachable" in proc.stderr
    assert not (prepared / "train.json").exists()
    assert elapsed < 30, f"took {elapsed:.1f}s: the health check must use a short timeout, no retries"


def test_unset_tracking_uri(prepared, tmp_path) -> None:
    proc = trainer("train", prepared, pipeline_args("train"), pod_env(tmp_path / "home", None))
    assert proc.returncode == EXIT_TRACKING
    assert "MLFLOW_TRACKING_URI is not set" in proc.stderr


def test_failed_registration_is_rolled_back(prepared, env, mlflow_server, monkeypatch) -> None:
    """A failure after the version was created (here: setting the alias) removes the version and
    the model created for it. The failure is injected in-process (mock): a real server cannot be
    made to fail between two registry calls on demand."""
    from mlops_trainer import steps
    from mlops_trainer.workspace import Workspace

    summary(trainer("train", prepared, pipeline_args("train"), env))
    summary(trainer("evaluate", prepared, [], env))
    name = f"rollback-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)

    def fail(self, *args, **kwargs):
        raise MlflowException("injected failure while setting an alias")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", fail)
    with pytest.raises(MlflowException, match="injected"):
        steps.register(Workspace(prepared), name, "test_accuracy", 0.0)
    monkeypatch.undo()
    client = MlflowClient(mlflow_server.uri)
    assert client.search_model_versions(f"name='{name}'") == []
    with pytest.raises(MlflowException):
        client.get_registered_model(name)
    assert not (prepared / "register.json").exists()


def test_sigterm_during_registration_rolls_back(prepared, env, mlflow_server, monkeypatch) -> None:
    """Kubernetes stops pods with SIGTERM: the CLI's handler turns it into SystemExit, and the
    version created so far is removed. The signal is real; it is sent from inside the alias
    call (the injection point) because its timing cannot be hit from outside reliably."""
    import os
    import signal

    from mlops_trainer import cli, steps
    from mlops_trainer.workspace import Workspace

    summary(trainer("train", prepared, pipeline_args("train"), env))
    summary(trainer("evaluate", prepared, [], env))
    name = f"sigterm-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    previous = signal.signal(signal.SIGTERM, cli._terminated)
    try:

        def killed(self, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends

        monkeypatch.setattr(MlflowClient, "set_registered_model_alias", killed)
        with pytest.raises(SystemExit) as excinfo:
            steps.register(Workspace(prepared), name, "test_accuracy", 0.0)
        assert excinfo.value.code == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
        monkeypatch.undo()
    client = MlflowClient(mlflow_server.uri)
    assert client.search_model_versions(f"name='{name}'") == []


def test_retry_finishes_a_version_left_half_registered(prepared, env, mlflow_server) -> None:
    """A pod killed with SIGKILL cannot clean up: the version it created stays without aliases.
    The retry reuses and finishes it instead of registering the run a second time."""
    import json

    summary(trainer("train", prepared, pipeline_args("train"), env))
    summary(trainer("evaluate", prepared, [], env))
    trained = json.loads((prepared / "train.json").read_text())
    name = f"leftover-{uuid.uuid4().hex[:6]}"
    client = MlflowClient(mlflow_server.uri)
    import mlflow

    mlflow.set_tracking_uri(mlflow_server.uri)
    mlflow.register_model(trained["model_uri"], name)  # the leftover: no tags, no aliases
    out = summary(trainer("register", prepared, pipeline_args("register", model_name=name), env))
    assert out["version"] == "1" and out["reused_existing_version"] is True and out["champion"] is True
    (v,) = client.search_model_versions(f"name='{name}'")
    assert v.tags["mlops.registration"] == "complete"
    assert client.get_registered_model(name).aliases == {"candidate": "1", "champion": "1"}
