"""The pipeline steps. Each returns a JSON-serialisable summary (printed by the CLI)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from . import gpu, models, tracking
from .errors import TrackingError, UsageError, WorkspaceError
from .workspace import Workspace, write_atomic

log = logging.getLogger("mlops_trainer")

CANDIDATE = "candidate"
CHAMPION = "champion"
METRICS = ("test_accuracy", "test_f1_macro")


def prepare(ws: Workspace, dataset: str, test_size: float, seed: int) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise UsageError(f"--test-size must be between 0 and 1 (exclusive), got {test_size}")
    x, y, target_names = models.load_dataset(dataset)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    ws.data_dir.mkdir(parents=True, exist_ok=True)
    for path, xs, ys in ((ws.train_csv, x_train, y_train), (ws.test_csv, x_test, y_test)):
        write_atomic(path, xs.assign(target=ys).to_csv(index=False))
    state = {
        "dataset": dataset,
        "features": list(x.columns),
        "target": "target",
        "target_names": target_names,
        "rows_train": len(x_train),
        "rows_test": len(x_test),
        "seed": seed,
        "test_size": test_size,
    }
    ws.write_state("prepare", state)
    ws.clear_after("prepare")
    return state


def _read_split(ws: Workspace, which: str, prep: dict[str, Any]):
    import pandas as pd

    path = ws.train_csv if which == "train" else ws.test_csv
    if not path.is_file():
        raise WorkspaceError(f"{path} is missing: re-run `mlops-trainer prepare --workspace {ws.root}`")
    frame = pd.read_csv(path)
    return frame[prep["features"]], frame[prep["target"]]


def _env_tags() -> dict[str, str]:
    tags = {
        f"mlops.{k[6:].lower()}": v for k, v in os.environ.items() if k in ("MLOPS_PROFILE", "MLOPS_GPUS")
    }
    tags.update(gpu.detect().as_tags())
    return tags


def train(
    ws: Workspace,
    model_type: str,
    params: dict[str, Any],
    experiment: str,
    run_name: str | None,
    tags: dict[str, Any],
) -> dict[str, Any]:
    prep = ws.read_state("prepare", "train")
    estimator, merged = models.build_model(model_type, params, prep["seed"])  # usage errors first
    uri = tracking.check_reachable()
    x, y = _read_split(ws, "train", prep)
    try:
        estimator.fit(x, y)
    except (ValueError, TypeError) as exc:  # scikit-learn's InvalidParameterError is both
        raise UsageError(f"{model_type} rejected its parameters: {exc}") from exc
    train_accuracy = float((estimator.predict(x) == y).mean())

    import mlflow
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    signature = infer_signature(x, estimator.predict(x))
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags({**_env_tags(), **{str(k): str(v) for k, v in tags.items()}})
        mlflow.set_tags({"mlops.dataset": prep["dataset"], "mlops.model_type": model_type})
        mlflow.log_params({"model_type": model_type, "dataset": prep["dataset"], **merged})
        mlflow.log_metric("train_accuracy", train_accuracy)
        info = mlflow.sklearn.log_model(
            estimator,
            name="model",
            signature=signature,
            input_example=x.head(3),
            serialization_format="skops",
            skops_trusted_types=models.SKOPS_TRUSTED_TYPES.get(model_type),
        )
    state = {
        "tracking_uri": uri,
        "experiment": experiment,
        "experiment_id": run.info.experiment_id,
        "run_id": run.info.run_id,
        "model_uri": info.model_uri,
        "model_id": getattr(info, "model_id", None),
        "model_type": model_type,
        "params": merged,
        "train_accuracy": train_accuracy,
    }
    ws.write_state("train", state)
    ws.clear_after("train")
    return state


def evaluate(ws: Workspace) -> dict[str, Any]:
    trained = ws.read_state("train", "evaluate")
    prep = ws.read_state("prepare", "evaluate")
    tracking.check_reachable()

    import mlflow
    from mlflow import MlflowClient
    from sklearn.metrics import accuracy_score, f1_score

    model = mlflow.sklearn.load_model(trained["model_uri"])
    x, y = _read_split(ws, "test", prep)
    pred = model.predict(x)
    metrics = {
        "test_accuracy": float(accuracy_score(y, pred)),
        "test_f1_macro": float(f1_score(y, pred, average="macro")),
    }
    client = MlflowClient()
    for key, value in metrics.items():
        client.log_metric(trained["run_id"], key, value)
    state = {"run_id": trained["run_id"], "model_uri": trained["model_uri"], "metrics": metrics}
    ws.write_state("evaluate", state)
    ws.clear_after("evaluate")
    return state


def _champion(client, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _version_metric(client, version, metric: str) -> float | None:
    tag = (version.tags or {}).get(f"mlops.metric.{metric}")
    if tag is not None:
        return float(tag)
    run = client.get_run(version.run_id) if version.run_id else None
    value = run.data.metrics.get(metric) if run else None
    return float(value) if value is not None else None


def register(ws: Workspace, model_name: str, metric: str, min_improvement: float) -> dict[str, Any]:
    trained = ws.read_state("train", "register")
    evaluated = ws.read_state("evaluate", "register")
    if evaluated.get("run_id") != trained["run_id"]:
        raise WorkspaceError(
            f"evaluate.json belongs to run {evaluated.get('run_id')}, train.json to {trained['run_id']}: "
            f"re-run `mlops-trainer evaluate --workspace {ws.root}`"
        )
    if metric not in evaluated["metrics"]:
        raise UsageError(f"--metric {metric!r} was not evaluated; allowed: {', '.join(evaluated['metrics'])}")
    value = float(evaluated["metrics"][metric])
    tracking.check_reachable()

    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        client.get_registered_model(model_name)
        created_model = False
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        created_model = True

    champion = None if created_model else _champion(client, model_name)
    champion_value = _version_metric(client, champion, metric) if champion else None

    # Idempotent on retries: a READY version of this run is reused and finished (aliases, tags)
    # instead of registering the run twice; a completed one is preferred. (A version left
    # behind by a pod killed with SIGKILL mid-registration is completed by the retry.)
    existing = sorted(
        (
            v
            for v in client.search_model_versions(f"name='{model_name}' and run_id='{trained['run_id']}'")
            if v.status == "READY"
        ),
        key=lambda v: ((v.tags or {}).get("mlops.registration") != "complete", int(v.version)),
    )
    version = None
    try:
        if existing:
            version = existing[0]
            reused = True
        else:
            reused = False
            version = mlflow.register_model(
                trained["model_uri"],
                model_name,
                tags={"mlops.run_id": trained["run_id"], f"mlops.metric.{metric}": str(value)},
            )
            if version.status != "READY":
                raise TrackingError(
                    f"model version {model_name}/{version.version} is {version.status}, not READY"
                )
        for key, val in evaluated["metrics"].items():
            client.set_model_version_tag(model_name, version.version, f"mlops.metric.{key}", str(val))
        client.set_registered_model_alias(model_name, CANDIDATE, version.version)
        promote = champion is None or champion_value is None or value > champion_value + min_improvement
        if champion is not None and champion.version == version.version:
            promote = True  # re-run of the version that already is champion
        if promote:
            client.set_registered_model_alias(model_name, CHAMPION, version.version)
        client.set_model_version_tag(model_name, version.version, "mlops.registration", "complete")
    except BaseException:
        if version is not None and not existing:
            _rollback(client, model_name, version.version, created_model)
        raise
    client.set_tag(trained["run_id"], "mlops.registered_version", f"{model_name}/{version.version}")
    state = {
        "model_name": model_name,
        "version": str(version.version),
        "reused_existing_version": reused,
        "metric": metric,
        "value": value,
        "champion": bool(promote),
        "previous_champion": (
            {"version": str(champion.version), "value": champion_value} if champion is not None else None
        ),
        "aliases": [CANDIDATE, CHAMPION] if promote else [CANDIDATE],
        "model_uri": f"models:/{model_name}@{CHAMPION if promote else CANDIDATE}",
    }
    ws.write_state("register", state)
    return state


def _rollback(client, name: str, version: str, created_model: bool) -> None:
    """Remove a version whose registration did not complete (and a model created for it)."""
    try:
        client.delete_model_version(name, version)
        if created_model and not client.search_model_versions(f"name='{name}'"):
            client.delete_registered_model(name)
        log.error("registration of %s/%s failed: version removed again", name, version)
    except Exception as exc:  # the original error matters more; say what is left behind
        log.error("registration of %s/%s failed and could not be rolled back: %s", name, version, exc)


def predict(
    ws: Workspace, model_uri: str | None, model_name: str | None, alias: str, input_csv, output_csv
) -> dict[str, Any]:
    import pandas as pd

    if not model_uri:
        if not model_name:
            registered = ws.root / "register.json"
            if registered.is_file():
                model_name = ws.read_state("register", "predict")["model_name"]
            else:
                raise UsageError("give --model-uri (e.g. models:/iris@champion) or --model-name")
        model_uri = f"models:/{model_name}@{alias}"
    source = input_csv or ws.test_csv
    if not os.path.isfile(source):
        raise WorkspaceError(
            f"input {source} does not exist: run `mlops-trainer prepare --workspace {ws.root}` or pass --input"
        )
    tracking.check_reachable()

    import mlflow

    model = mlflow.pyfunc.load_model(model_uri)
    frame = pd.read_csv(source)
    features = frame.drop(columns=[c for c in ("target",) if c in frame.columns])
    predictions = model.predict(features)
    out = output_csv or (ws.root / "predictions.csv")
    write_atomic(Path(out), frame.assign(prediction=list(predictions)).to_csv(index=False))
    summary: dict[str, Any] = {"model_uri": model_uri, "rows": len(frame), "output": str(out)}
    if "target" in frame.columns:
        summary["accuracy"] = float((frame["target"].to_numpy() == predictions).mean())
    return summary
