"""The DAGs' own commands and Python tasks against a real MLflow server (processes tier).

Everything but Kubernetes is real: the task commands are the ones the operator would put in
the pods (built with tests/support/airflow_pods.py from the chart's templates), executed with
the trainer of .venv-mlflow (`mlops-trainer`, the program of the trainer image) and the pod's
env; the workspace sub-path the template would mount (`subPathExpr`) becomes a local
directory. The DAGs' Python tasks (gpu_sweep.compare, ml_inference.load_model,
ml_serving.resolve_version) talk to the same `mlflow server` over REST, as in the cluster.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.dags.dag_tasks import SAMPLE_XCOMS, xcoms_for
from tests.support import paths
from tests.support.airflow_pods import build_pod
from tests.support.mlflow_server import mlflow_server
from tests.support.platform_env import PlatformEnv, load_dagbag

pytestmark = pytest.mark.processes

ML_BIN = paths.REPO / ".venv-mlflow" / "bin"
RUN_ID = "manual__2026-02-03T04:05:06+00:00"

if not (ML_BIN / "mlflow").exists() or not (ML_BIN / "mlops-trainer").exists():
    pytest.skip(
        ".venv-mlflow (MLflow + mlops-trainer) is not built: `make venv-mlflow` (make test builds it)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    with mlflow_server(ML_BIN, tmp_path_factory.mktemp("mlflow")) as server:
        yield server.uri


@pytest.fixture(scope="module")
def local_env(platform_envs, mlflow_uri, tmp_path_factory) -> PlatformEnv:
    """The production platform files, with the tracking URI of the local MLflow server."""
    base = platform_envs["production.example"]
    mlflow = {**base.platform["mlflow"], "trackingUri": mlflow_uri}
    return base.with_platform(tmp_path_factory.mktemp("platform-local"), name="local", mlflow=mlflow)


@pytest.fixture(scope="module")
def bag(local_env):
    bag = load_dagbag(paths.DAGS_DIR, local_env)
    assert bag.import_errors == {}
    return bag


def run_pod(
    local_env, workspace_root: Path, mlflow_uri: str, bag, dag_id: str, task_id: str, index=-1, xcoms=None, conf=None
):
    """Execute the pod's command as the container would (workspace = its sub-path)."""
    dag = bag.dags[dag_id]
    with local_env.active():
        pod = build_pod(
            dag, dag.get_task(task_id), conf=conf, map_index=index, run_id=RUN_ID, xcoms=xcoms or SAMPLE_XCOMS
        )
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}  # not valueFrom (Secrets)
    sub_path = workspace_root / env["MLOPS_WORKSPACE_SUBPATH"]
    sub_path.mkdir(parents=True, exist_ok=True)  # kubelet creates the subPathExpr directory
    mount = local_env.platform["workspace"]["mountPath"]
    argv = [a.replace(mount, str(sub_path)) for a in container["command"] + container.get("args", [])]
    assert argv[0] == "mlops-trainer", argv
    env.update(
        {"MLFLOW_TRACKING_URI": mlflow_uri, "HOME": str(workspace_root), "PATH": f"{ML_BIN}:/usr/bin:/bin"}
    )
    proc = subprocess.run(
        [str(ML_BIN / argv[0]), *argv[1:]], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, (
        f"{dag_id}.{task_id}[{index}] {argv}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1]), sub_path


def test_training_then_inference_then_serving_version(local_env, bag, mlflow_uri, tmp_path) -> None:
    for task_id in ("prepare", "train_cpu", "evaluate", "register"):
        summary, workspace = run_pod(local_env, tmp_path, mlflow_uri, bag, "ml_training", task_id)
    assert workspace == tmp_path / "ml_training" / workspace.name
    assert ":" not in workspace.name and "+" not in workspace.name
    version = str(summary["version"])  # register's summary (first registration: champion)

    # ml_inference.load_model resolves the alias through the REST API (Airflow side, no MLflow)
    load_model = bag.dags["ml_inference"].get_task("load_model").python_callable
    resolved = load_model(params={"model_name": "iris", "alias": "champion"})
    assert resolved["model_uri"].startswith("models:/iris/")
    assert resolved["version"] == version

    # ml_serving.resolve_version gives the same version
    resolve = bag.dags["ml_serving"].get_task("resolve_version").python_callable
    assert resolve(params={"model_name": "iris", "version": None, "alias": "champion"}) == {
        "model": "iris",
        "version": resolved["version"],
    }

    # ml_inference's pods with that model version
    run_pod(local_env, tmp_path, mlflow_uri, bag, "ml_inference", "load_data")
    xcoms = {"load_model": resolved}
    out, workspace = run_pod(
        local_env, tmp_path, mlflow_uri, bag, "ml_inference", "batch_predict", xcoms=xcoms
    )
    assert out["rows"] > 0 and out["model_uri"] == resolved["model_uri"]
    assert (workspace / "out" / "predictions.csv").is_file()


# Two variants whose hyperparameters really differ: a one-split stump and a forest.
SWEEP_CONF = {
    "variants": [
        {"name": "stump", "profile": "gpu-1", "seed": 3, "params": {"max_depth": 1, "n_estimators": 1}},
        {"name": "forest", "profile": "gpu-2", "seed": 4, "params": {"max_depth": 6, "n_estimators": 40}},
    ]
}


def test_gpu_sweep_compare_picks_and_tags_the_best(local_env, bag, mlflow_uri, tmp_path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from mlops_platform import mlflow_rest

    dag = bag.dags["gpu_sweep"]
    with local_env.active():
        xcoms = xcoms_for(dag, SWEEP_CONF, RUN_ID)  # the plan's own entries for this conf
    assert [len(xcoms[f"variants_gpu_{n}"]) for n in (1, 2, 4, 8)] == [1, 1, 0, 0]

    def chain(index: int) -> None:
        train = ("train_gpu_1", "train_gpu_2")[index]
        for task_id, i in (("prepare", index), (train, 0), ("evaluate", index)):
            run_pod(local_env, tmp_path, mlflow_uri, bag, "gpu_sweep", task_id, index=i, xcoms=xcoms, conf=SWEEP_CONF)

    # the two variants in parallel, as in the cluster
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(chain, [0, 1]))
    dirs = sorted(p.name for p in (tmp_path / "gpu_sweep").iterdir() for p in p.iterdir())
    assert dirs == ["forest", "stump"], "each variant has its own workspace directory"

    compare = dag.get_task("compare").python_callable
    result = compare(params={"metric": "test_accuracy"}, run_id=RUN_ID)
    values = {r["variant"]: r["value"] for r in result["all"]}
    assert set(values) == {"stump", "forest"}
    assert values["stump"] != values["forest"], f"different hyperparameters, different metrics: {values}"
    assert result["best_value"] == max(values.values())
    assert result["best_variant"] == max(values, key=values.get)
    runs = mlflow_rest.search_runs(mlflow_uri, "gpu-sweep", f"tags.`airflow.run_id` = '{RUN_ID}'")
    tagged = [r["info"]["run_id"] for r in runs if mlflow_rest.run_tags(r).get("mlops.sweep_best") == "true"]
    assert tagged == [result["best_run_id"]]
    seeds = {
        mlflow_rest.run_tags(r)["mlops.sweep_variant"]: mlflow_rest.run_tags(r)["mlops.sweep_seed"]
        for r in runs
    }
    assert seeds == {"stump": "3", "forest": "4"}, f"each variant trains with its own seed: {seeds}"

    # register: the winner's workspace becomes a model version; champion only if it beats the champion
    out, ws = run_pod(
        local_env,
        tmp_path,
        mlflow_uri,
        bag,
        "gpu_sweep",
        "register",
        xcoms={**SAMPLE_XCOMS, "compare": result},
    )
    assert ws.name == result["best_variant"], "register reads the winner's own workspace"
    assert out["metric"] == "test_accuracy" and out["value"] == result["best_value"]
    (best,) = [
        r
        for r in mlflow_rest.search_runs(mlflow_uri, "gpu-sweep", f"tags.`airflow.run_id` = '{RUN_ID}'")
        if r["info"]["run_id"] == result["best_run_id"]
    ]
    assert mlflow_rest.run_tags(best)["mlops.registered_version"] == f"{out['model_name']}/{out['version']}"
    champion = mlflow_rest.model_version_by_alias(mlflow_uri, out["model_name"], "champion")
    if out["champion"]:
        assert str(champion["version"]) == out["version"]
    else:
        assert out["previous_champion"]["value"] >= out["value"]
        assert str(champion["version"]) == out["previous_champion"]["version"]
    # another run id sees nothing: compare fails clearly instead of picking a stranger's run
    with pytest.raises(RuntimeError, match="no evaluated run"):
        compare(params={"metric": "test_accuracy"}, run_id="manual__other")
