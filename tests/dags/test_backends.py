"""The `backend` Param of run_job and gpu_sweep: kubernetes (task pods) or basecommand (NVIDIA Base
Command), run by Airflow itself (dag.test) against a STAND-IN NGC server.

NVIDIA's Base Command Platform cannot be reached here: tests/support/ngc_standin.py stands in for
the NGC token service and the Base Command job API on 127.0.0.1 (it is not NVIDIA's service).
`dag.test()` runs the deferred Base Command tasks' triggers inline, so the branch, the deferral and
the resumption are Airflow's own. The kubernetes side of the same DAGs is built into pods in
tests/dags/test_pods.py and test_sweep.py and runs on the control plane in tests/cluster.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.dags.dag_tasks import SAMPLE_RUN_ID, xcoms_for
from tests.support.airflow_db import dag_folder
from tests.support.airflow_pods import build_pod
from tests.support.ngc_standin import INSTANCE_TYPES, NgcStandin, Standin, write_basecommand

NGC_IMAGE = "mlops-org/trainer:1.0"


@pytest.fixture(scope="module")
def airflow_db() -> Path:
    """A migrated metadata DB and a DAG folder with run_job and gpu_sweep."""
    return dag_folder("run_job", "gpu_sweep")


def _platform(tmp_path: Path, platform_envs, monkeypatch, **basecommand: Any) -> Path:
    """The production example's platform files plus a basecommand.json enabling the backend."""
    env = platform_envs["production.example"]
    shutil.copytree(env.directory, tmp_path / "platform")
    write_basecommand(tmp_path / "platform", image=NGC_IMAGE, **basecommand)
    monkeypatch.setenv("MLOPS_PLATFORM_DIR", str(tmp_path / "platform"))
    monkeypatch.setenv("MLOPS_POD_TEMPLATES_DIR", str(env.templates_dir))
    return tmp_path / "platform"


@pytest.fixture()
def platform_dir(tmp_path: Path, platform_envs, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _platform(tmp_path, platform_envs, monkeypatch)


def load(folder: Path, dag_id: str) -> Any:
    from airflow.models.dagbag import DagBag

    bag = DagBag(str(folder / f"{dag_id}.py"), include_examples=False, safe_mode=False)
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags[dag_id]


def run(folder: Path, dag_id: str, server: NgcStandin, monkeypatch: pytest.MonkeyPatch, **conf: Any) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_NGC_BASECOMMAND", json.dumps(server.connection()))
    dr = load(folder, dag_id).test(run_conf=conf)
    dr.states = {
        (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state).rsplit(".", 1)[-1].lower()
        for ti in dr.get_task_instances()
    }
    return dr


def test_run_job_on_basecommand_runs_the_profiles_instance_type(
    airflow_db: Path, platform_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with NgcStandin(Standin()) as server:
        dr = run(
            airflow_db, "run_job", server, monkeypatch,
            backend="basecommand", profile="gpu-2", command=["python", "train.py", "--epochs", "2"],
            env={"LOG_LEVEL": "debug"}, timeout_seconds=900,
        )
        jobs = list(server.state.jobs.values())
    assert dr.state == "success", dr.states
    assert dr.states["job_basecommand"] == "success" and dr.states["job_gpu_2"] == "skipped", dr.states
    (job,) = jobs
    assert job.body["aceInstance"] == INSTANCE_TYPES["gpu-2"]  # a profile means the same on both backends
    assert job.body["command"] == "python train.py --epochs 2"
    assert NGC_IMAGE in job.body["dockerImageName"]
    assert {"name": "LOG_LEVEL", "value": "debug"} in job.body["envs"]
    assert job.body["runPolicy"]["totalRuntimeSeconds"] == 900


def test_run_job_on_kubernetes_never_calls_basecommand(
    airflow_db: Path, platform_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = load(airflow_db, "run_job")
    choose = dag.get_task("choose_profile").python_callable
    assert choose(params={"backend": "kubernetes", "profile": "gpu-4"}) == "job_gpu_4"
    assert choose(params={"backend": "basecommand", "profile": "gpu-4"}) == "job_basecommand"
    assert dag.params["backend"] == "kubernetes"  # the chart's defaultBackend


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"backend": "basecommand", "profile": "cpu"}, "key 'profile': cpu has no Base Command instance type"),
        (
            {"backend": "basecommand", "profile": "gpu-1", "secrets": {"HF_TOKEN": "hf-token/token"}},
            "key 'secrets': Kubernetes Secrets are not available to Base Command jobs",
        ),
    ],
)
def test_run_job_refuses_what_basecommand_cannot_run(airflow_db, platform_dir, params, message) -> None:
    choose = load(airflow_db, "run_job").get_task("choose_profile").python_callable
    with pytest.raises(ValueError, match=message):
        choose(params=params)


def test_an_unoffered_backend_is_refused_at_trigger(platform_envs, dagbags) -> None:
    """Where the chart does not enable Base Command, `basecommand` is not a value of the Param."""
    from airflow.exceptions import ParamValidationError

    env = platform_envs["production.example"]
    for dag_id, task_id in (("run_job", "job_cpu"), ("gpu_sweep", "register")):
        dag = dagbags["production.example"].dags[dag_id]
        assert dag.params.get_param("backend").schema["enum"] == ["kubernetes"]
        with env.active(), pytest.raises(ParamValidationError, match="backend"):
            build_pod(dag, dag.get_task(task_id), conf={"backend": "basecommand"}, run_id=SAMPLE_RUN_ID,
                      xcoms=xcoms_for(dag, {}))
        with pytest.raises(ParamValidationError, match="backend"):
            build_pod(dag, dag.get_task(task_id), conf={"backend": "slurm"}, run_id=SAMPLE_RUN_ID,
                      xcoms=xcoms_for(dag, {}))


def test_gpu_sweep_on_basecommand_one_job_per_variant_best_by_metric(
    airflow_db: Path, platform_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants = [
        {"name": "small", "profile": "gpu-1", "seed": 5, "params": {"max_depth": 2}},
        {"name": "large", "profile": "gpu-8", "model_type": "gradient_boosting"},
    ]
    with NgcStandin(Standin()) as server:
        dr = run(airflow_db, "gpu_sweep", server, monkeypatch, backend="basecommand", variants=variants,
                 ngc_command=["python", "sweep.py"])
        jobs = sorted(server.state.jobs.values(), key=lambda j: j.body["aceInstance"])
    assert dr.state == "success", sorted(dr.states.items())
    # the pods' side is skipped, the workspace cleanup too (no workspace was used)
    for task_id in ("prepare", "train_gpu_1", "evaluate", "compare", "register", "cleanup"):
        assert dr.states[task_id] == "skipped", (task_id, dr.states)
    assert {j.body["aceInstance"] for j in jobs} == {INSTANCE_TYPES["gpu-1"], INSTANCE_TYPES["gpu-8"]}
    envs = {j.body["aceInstance"]: {e["name"]: e["value"] for e in j.body["envs"]} for j in jobs}
    small = envs[INSTANCE_TYPES["gpu-1"]]
    assert small["MLOPS_SWEEP_VARIANT"] == "small" and small["MLOPS_SWEEP_SEED"] == "5"
    assert json.loads(small["MLOPS_SWEEP_PARAMS"]) == {"max_depth": 2}
    assert envs[INSTANCE_TYPES["gpu-8"]]["MLOPS_MODEL_TYPE"] == "gradient_boosting"
    assert all(j.body["command"] == "python sweep.py" for j in jobs)
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        (best,) = [
            x.value
            for x in session.query(XComModel).filter_by(
                dag_id="gpu_sweep", run_id=dr.run_id, task_id="compare_basecommand", key="return_value"
            )
        ]
    # the stand-in's jobs report test_accuracy 0.90 + GPUs/100: the 8-GPU variant wins by the metric
    assert best["best_variant"] == "large" and best["best_value"] > best["all"][1]["value"]


def test_gpu_sweep_refuses_a_variant_without_an_instance_type(
    airflow_db: Path, tmp_path: Path, platform_envs, monkeypatch: pytest.MonkeyPatch
) -> None:
    _platform(tmp_path, platform_envs, monkeypatch, instanceTypes={"gpu-1": INSTANCE_TYPES["gpu-1"]})
    dag = load(airflow_db, "gpu_sweep")
    from tests.dags.dag_tasks import python_xcoms

    with pytest.raises(ValueError, match="key 'profile': gpu-4 has no Base Command instance type"):
        python_xcoms(dag, {"backend": "basecommand", "variants": [{"profile": "gpu-1"}, {"profile": "gpu-4"}]}, "r")
    # the same variants on kubernetes are fine
    assert python_xcoms(dag, {"variants": [{"profile": "gpu-1"}, {"profile": "gpu-4"}]}, "r")["variants_gpu_4"]
