"""Run `mlops-trainer` as the pipeline pods do: same arguments, pod-like environment."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.images import procs

DAG_ID = "ml_training"


def pod_env(
    home: Path, tracking_uri: str | None, run_id: str = "manual__2026-01-01T00:00:00+00:00"
) -> dict[str, str]:
    """The env of the pod templates (HOME=/tmp, MLFLOW_TRACKING_URI, MLOPS_PROFILE, MLOPS_GPUS)
    plus the per-run sub-path the DAG task sets."""
    env = procs.base_env(home)
    env.update({"MLOPS_PROFILE": "cpu", "MLOPS_GPUS": "0", "MLOPS_WORKSPACE_SUBPATH": f"{DAG_ID}/{run_id}"})
    if tracking_uri is not None:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def pipeline_args(
    step: str,
    *,
    dataset: str = "iris",
    model_type: str = "logistic_regression",
    model_name: str = "iris",
    run: str = "manual__2026-01-01T00-00-00",
) -> list[str]:
    """The arguments of dags/ml_training.py for each step (after `--workspace <ws>`)."""
    return {
        "prepare": ["--dataset", dataset, "--seed", "42"],
        "train": [
            "--model-type", model_type,
            "--experiment", "airflow-mlops",
            "--run-name", f"{DAG_ID}-{run}",
            "--tag", f"airflow.dag_id={DAG_ID}",
            "--tag", f"airflow.run_id={run}",
        ],
        "evaluate": [],
        "register": ["--model-name", model_name],
    }[step]  # fmt: skip


def trainer(
    step: str, workspace: Path, args: list[str], env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(procs.BIN / "mlops-trainer"), step, "--workspace", str(workspace), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def summary(proc: subprocess.CompletedProcess) -> dict[str, Any]:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_pipeline(workspace: Path, env: dict[str, str], **kw: str) -> dict[str, dict[str, Any]]:
    workspace.mkdir(parents=True, exist_ok=True)
    out = {}
    for step in ("prepare", "train", "evaluate", "register"):
        out[step] = summary(trainer(step, workspace, pipeline_args(step, **kw), env))
    return out
