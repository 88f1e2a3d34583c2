"""ml_training on a GPU profile: success, the train pod ran on the GPU node with nvidia.com/gpu,
and the model is registered in MLflow with the alias `champion`."""

from __future__ import annotations

from typing import Any

import requests

from tests.kind import support
from tests.support import pipeline_checks as checks

PROFILE = "gpu-1"
MODEL = "iris"


def test_ml_training_on_gpu_profile(
    k8s: support.Kube,
    airflow: support.Airflow,
    mlflow_url: str,
    mlflow_auth: tuple[str, str],
    platform: dict[str, Any],
) -> None:
    airflow.unpause("ml_training")
    r = airflow.trigger("ml_training", {"profile": PROFILE, "model_name": MODEL})
    assert r.status_code == 200, f"trigger ml_training: HTTP {r.status_code} {r.text[:500]}"
    run_id = r.json()["dag_run_id"]
    watcher = support.PodWatcher(k8s, "ml_training")
    state = airflow.wait_run("ml_training", run_id, timeout=1800, on_poll=watcher.poll)
    assert state == "success", airflow.failure_report("ml_training", run_id) + "\n" + k8s.diagnostics()

    train_task = "train_" + PROFILE.replace("-", "_")
    pods = watcher.by_task(train_task)
    assert pods, f"never saw a pod of task {train_task} (seen: {sorted(watcher.seen)})"
    # the same checks as tests/cluster/test_pipelines.py (tests/support/pipeline_checks.py)
    for pod in pods:
        checks.assert_identified(pod, "ml_training", train_task)
        checks.assert_placed(pod, 1, {support.GPU_NODE})
        checks.assert_platform_mounts(pod, platform)  # pull secret, workspace subPathExpr, datasets read-only
    # CPU steps stay off the GPU node.
    for pod in watcher.by_task("prepare"):
        checks.assert_placed(pod, 0, {support.GPU_NODE})

    r = requests.get(
        f"{mlflow_url}/api/2.0/mlflow/registered-models/alias",
        params={"name": MODEL, "alias": "champion"},
        auth=mlflow_auth,  # MLflow's basic-auth app (mlflow.auth.enabled)
        timeout=30,
    )
    assert r.status_code == 200, f"MLflow alias champion of {MODEL}: HTTP {r.status_code} {r.text[:300]}"
    version = r.json()["model_version"]
    support.log(f"MLflow: {MODEL} version {version['version']} is champion (run {version.get('run_id')})")
    assert "champion" in (version.get("aliases") or ["champion"])
