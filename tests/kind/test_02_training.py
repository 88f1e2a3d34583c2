"""ml_training on the provider's training profile (kind: gpu-1, the train pod on the GPU node
with nvidia.com/gpu; realnode: cpu, every step a real container on the real node, since the GPU
nodes there are simulated): success, and the model is registered in MLflow with the alias
`champion`."""

from __future__ import annotations

import time
from typing import Any

import requests

from tests.kind import providers, support
from tests.support import pipeline_checks as checks

MODEL = "iris"


def test_ml_training(
    k8s: support.Kube,
    airflow: support.Airflow,
    mlflow_url: str,
    mlflow_auth: tuple[str, str],
    platform: dict[str, Any],
    provider: providers.Provider,
) -> None:
    PROFILE = provider.training_profile
    gpus = platform["profiles"][PROFILE]["gpus"]
    started = time.monotonic()
    airflow.unpause("ml_training")
    r = airflow.trigger("ml_training", {"profile": PROFILE, "model_name": MODEL})
    assert r.status_code == 200, f"trigger ml_training: HTTP {r.status_code} {r.text[:500]}"
    run_id = r.json()["dag_run_id"]
    watcher = support.PodWatcher(k8s, "ml_training")
    state = airflow.wait_run("ml_training", run_id, timeout=1800, on_poll=watcher.poll)
    provider.figures.append(f"ml_training ({PROFILE}) trigger -> {state}: {time.monotonic() - started:.0f}s")
    assert state == "success", airflow.failure_report("ml_training", run_id) + "\n" + k8s.diagnostics()

    train_task = "train_" + PROFILE.replace("-", "_")
    pods = watcher.by_task(train_task)
    assert pods, f"never saw a pod of task {train_task} (seen: {sorted(watcher.seen)})"
    # the same checks as tests/cluster/test_pipelines.py (tests/support/pipeline_checks.py)
    for pod in pods:
        checks.assert_identified(pod, "ml_training", train_task)
        checks.assert_placed(pod, gpus, set(provider.gpu_nodes))
        checks.assert_platform_mounts(pod, platform)  # pull secret, workspace subPathExpr, datasets read-only
    # CPU steps stay off the GPU node (and run on the platform node: real containers on realnode).
    for pod in watcher.by_task("prepare"):
        checks.assert_placed(pod, 0, set(provider.gpu_nodes))
        if provider.name == "realnode":
            assert pod["spec"].get("nodeName") == provider.platform_node, pod["metadata"]["name"]

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
