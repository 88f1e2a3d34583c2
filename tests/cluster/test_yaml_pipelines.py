"""The YAML pipelines (dags/pipelines/*.yaml, built by dag-factory through dags/yaml_pipelines.py)
run by the real Airflow 3.1.8 against the control plane, as tests/cluster/test_pipelines.py runs
the Python DAGs (same harness: dag.test() in process, real KubernetesPodOperator pods admitted and
placed by the API server and kube-scheduler on kwok nodes, which run no containers).

Its own release: values/production.example.yaml as release `mlops` in namespace `yaml-pipelines`,
task pods in `yaml-pipelines-jobs` (so this module runs alone or after test_pipelines.py in one
session).
"""

from __future__ import annotations

import pytest

from tests.cluster import pipelines as pl
from tests.cluster import test_pipelines as tp
from tests.cluster.test_pipelines import as_dict, check_pod, pods_of, run, states, workspace_of
from tests.support import pipeline_checks as checks

NS, TASKS_NS = "yaml-pipelines", "yaml-pipelines-jobs"
# the same Airflow set-up and terminal-summary lines as test_pipelines.py (fixtures), for this
# module's platform and pods below
airflow, observed = tp.airflow, tp.observed


@pytest.fixture(scope="module")
def platform(cluster, tmp_path_factory, cluster_report):
    p = pl.install_platform(cluster, tmp_path_factory.mktemp("yaml-pipelines"), NS, TASKS_NS)
    cluster_report.append(f"yaml pipelines: production example installed in {p.install_seconds:.1f}s")
    return p


@pytest.fixture(scope="module")
def pods(cluster, platform):
    rec = pl.PodRecorder(cluster.api, TASKS_NS)
    yield rec
    rec.stop()


def test_the_yaml_pipelines_are_in_the_dag_folder(airflow):
    assert {"nfs_dataset_yaml", "train_gpu_yaml"} <= set(airflow.dags)
    assert airflow.import_errors == {}


def test_nfs_dataset_yaml_reads_the_datasets_volume_read_only(platform, airflow, pods, observed):
    dr = run(airflow, "nfs_dataset_yaml", {"path": "iris"})
    assert dr.state == "success", states(dr)
    (r,) = pods_of(pods, "nfs_dataset_yaml", dr, observed, "nfs_dataset_yaml (YAML)")
    check_pod(platform, r, "nfs_dataset_yaml", "cpu", workspace_of("nfs_dataset_yaml", dr))
    assert r.spec.containers[0].command == ["python"] and r.spec.containers[0].args[-1] == "/data/iris"
    (vol,) = [v for v in r.spec.volumes if v.name == "datasets"]
    assert vol.persistent_volume_claim.read_only is True


def test_train_gpu_yaml_runs_prepare_train_on_one_gpu_evaluate_cleanup(platform, airflow, pods, observed):
    dr = run(airflow, "train_gpu_yaml", {"dataset": "wine", "model_type": "random_forest"})
    st = states(dr)
    assert dr.state == "success", st
    got = pods_of(pods, "train_gpu_yaml", dr, observed, "train_gpu_yaml (YAML)")
    by_task = {r.labels["task_id"]: r for r in got}
    assert list(by_task) == ["prepare", "train", "evaluate", "cleanup"], [r.describe() for r in got]
    for task_id, r in by_task.items():
        profile = "gpu-1" if task_id == "train" else "cpu"
        check_pod(platform, r, "train_gpu_yaml", profile, workspace_of("train_gpu_yaml", dr))
        assert r.phases[-1] == "Succeeded" and r.deleted, r.describe()
    train = by_task["train"]
    assert train.gpus == 1 and train.node in pl.GPU_NODES, train.describe()
    assert train.spec.active_deadline_seconds == 3600
    assert {"LOG_LEVEL": "info"}.items() <= {e.name: e.value for e in train.spec.containers[0].env}.items()
    assert "wine" in by_task["prepare"].spec.containers[0].args


def test_train_gpu_yaml_a_failing_train_fails_the_run_and_cleanup_still_runs(platform, airflow, pods, observed):
    def fail_train(dag):
        dag.task_dict["train"].annotations = {pl.FAIL_ANNOTATION: "true"}

    try:
        dr = run(airflow, "train_gpu_yaml", {}, tweak=fail_train)
    finally:
        airflow.dags["train_gpu_yaml"].task_dict["train"].annotations = {}
    st = states(dr)
    assert dr.state == "failed", st
    assert st["train"] == "failed" and st["evaluate"] == "upstream_failed", st
    assert st["cleanup"] == "success", st  # cleanup: true -> a teardown that does not turn the run green
    got = pods_of(pods, "train_gpu_yaml", dr, observed, "train_gpu_yaml (YAML), train fails every try")
    trains = [r for r in got if r.labels["task_id"] == "train"]
    checks.assert_tries([as_dict(r) for r in trains], ["Failed"] * 3)  # retries=2 (dag_defaults)
    assert [r.labels["task_id"] for r in got if r.labels["task_id"] != "train"] == ["prepare", "cleanup"]
