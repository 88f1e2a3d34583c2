"""The platform's pipelines run by the real Airflow 3.1.8 (provider 10.25) against the control
plane: real KubernetesPodOperators create real pods in the API server, the real kube-scheduler
places them on the simulated CPU/GPU nodes.

**kwok nodes run no containers.** A task pod is admitted (Pod Security restricted in the task
namespace; RBAC of the chart's task-launcher Role: the operator authenticates with a TokenRequest
token of the account the chart binds, LocalExecutor -> the scheduler's), scheduled, and kwok writes
its status: Succeeded after 1 s, or Failed when the pod carries the annotation
``mlops.test/kwok-fail: "true"`` (set by a test through the task's templated ``annotations``).
Nothing is pulled or executed, so the operator runs with ``get_logs=False`` (no kubelet:
``pods/log`` cannot answer) and, as the platform already does, without XCom sidecar
(tests/cluster/pipelines.py). MLflow does not run either: its REST helpers are replaced by a
stand-in; the process tests run them against a real MLflow.

How Airflow runs here: ``dag.test()`` on the copied DAG folder with the chart's files as the
chart mounts them (platform.json, its schema, serving-deployment.yaml and the pod templates read
back from the installed ConfigMaps; MLOPS_PLATFORM_DIR / MLOPS_POD_TEMPLATES_DIR). It runs the
tasks one after another in this process with Airflow's own dependency, trigger-rule, branch,
teardown and retry logic and its metadata DB (sqlite); it does not apply pools or run tasks in
parallel (that needs a real scheduler). Retry delays are shortened to 1 s (count and policy stay
the DAG's: 2 retries).

The release: values/production.example.yaml as release `mlops` in namespace `pipelines`, task
pods in `pipelines-jobs`, model servers in `pipelines-serving`, the GPU pool sized to this cluster
(16 slots = 2 nodes x 8 GPUs).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import pipelines as pl
from tests.cluster.pipelines import as_dict, check_pod, pods_of, profile_gpus, run, states, workspace_of
from tests.support import pipeline_checks as checks

NS, TASKS_NS = "pipelines", "pipelines-jobs"


@pytest.fixture(scope="module")
def platform(cluster, tmp_path_factory, cluster_report):
    p = pl.install_platform(cluster, tmp_path_factory.mktemp("pipelines"), NS, TASKS_NS)
    cluster_report.append(f"pipelines: production example installed in {p.install_seconds:.1f}s; task pods launched "
                          f"with a TokenRequest token of {p.service_account[0]}/{p.service_account[1]}")
    return p


@pytest.fixture(scope="module")
def pods(cluster, platform):
    rec = pl.PodRecorder(cluster.api, TASKS_NS)
    yield rec
    rec.stop()


@pytest.fixture()
def mlflow(monkeypatch, airflow):
    standin = pl.MlflowStandin()
    standin.install(monkeypatch)
    return standin


# --- ml_training -----------------------------------------------------------------------------------

@pytest.mark.pipeline("ml_training")
def test_ml_training_runs_each_step_as_a_pod_and_train_on_the_chosen_gpu_profile(platform, airflow, pods, observed):
    dr = run(airflow, "ml_training", {"profile": "gpu-4"})
    st = states(dr)
    assert dr.state == "success", st
    assert st["train_gpu_4"] == "success" and st["choose_profile"] == "success"
    assert all(st[f"train_{p}"] == "skipped" for p in ("cpu", "gpu_1", "gpu_2", "gpu_8")), st
    got = pods_of(pods, "ml_training", dr, observed, "ml_training profile=gpu-4")
    by_task = {r.labels["task_id"]: r for r in got}
    assert list(by_task) == ["prepare", "train_gpu_4", "evaluate", "register", "cleanup"], [r.describe() for r in got]
    for task_id, r in by_task.items():
        check_pod(platform, r, "ml_training", "gpu-4" if task_id == "train_gpu_4" else "cpu", workspace_of("ml_training", dr))
        assert r.phases[-1] == "Succeeded" and "Running" in r.phases, r.describe()
        assert r.deleted, f"{r.name}: on_finish_action delete_succeeded_pod did not delete it"


@pytest.mark.pipeline("ml_training")
def test_ml_training_a_train_pod_that_keeps_failing_fails_the_run_after_its_retries_and_cleanup_still_runs(
        platform, airflow, pods, observed):
    def fail_train(dag):
        dag.task_dict["train_gpu_1"].annotations = {pl.FAIL_ANNOTATION: "true"}

    try:
        dr = run(airflow, "ml_training", {"profile": "gpu-1"}, tweak=fail_train)
    finally:
        airflow.dags["ml_training"].task_dict["train_gpu_1"].annotations = {}
    st = states(dr)
    assert dr.state == "failed", st
    assert st["train_gpu_1"] == "failed" and st["evaluate"] == "upstream_failed" and st["register"] == "upstream_failed", st
    assert st["cleanup"] == "success", st  # the teardown ran and did not turn the run green
    got = pods_of(pods, "ml_training", dr, observed, "ml_training profile=gpu-1, train fails every try")
    trains = [r for r in got if r.labels["task_id"] == "train_gpu_1"]
    checks.assert_tries([as_dict(r) for r in trains], ["Failed"] * 3)  # retries=2 (dag_defaults)
    for r in trains:
        check_pod(platform, r, "ml_training", "gpu-1")
        assert not r.deleted, f"{r.name}: a failed pod is kept (delete_succeeded_pod)"
    assert [r.labels["task_id"] for r in got if r.labels["task_id"] != "train_gpu_1"] == ["prepare", "cleanup"]


# --- run_job ---------------------------------------------------------------------------------------

@pytest.mark.pipeline("run_job")
def test_run_job_on_gpu_8_fails_once_and_succeeds_on_retry(platform, airflow, pods, observed):
    def fail_first_try(dag):
        dag.task_dict["job_gpu_8"].annotations = {pl.FAIL_ANNOTATION: "{{ 'true' if ti.try_number == 1 else 'false' }}"}

    conf = {"image": "trainer", "tag": "1.0.0", "command": ["mlops-trainer", "--version"], "profile": "gpu-8",
            "env": {"LOG_LEVEL": "debug"}, "timeout_seconds": 600}
    try:
        dr = run(airflow, "run_job", conf, tweak=fail_first_try)
    finally:
        airflow.dags["run_job"].task_dict["job_gpu_8"].annotations = {}
    st = states(dr)
    assert dr.state == "success", st
    got = pods_of(pods, "run_job", dr, observed, "run_job profile=gpu-8, first try fails")
    assert {r.labels["task_id"] for r in got} == {"job_gpu_8"}
    checks.assert_tries([as_dict(r) for r in got], ["Failed", "Succeeded"])
    # the same check as tests/kind/test_06_task_retry.py (tests/support/pipeline_checks.py)
    checks.assert_retried([as_dict(r) for r in got], pl.task_states(dr, "try_number")["job_gpu_8"])
    failed, ok = sorted(got, key=lambda r: int(r.labels["try_number"]))
    assert not failed.deleted and ok.deleted, (failed.describe(), ok.describe())
    for r in got:
        check_pod(platform, r, "run_job", "gpu-8", workspace_of("run_job", dr))
        c = r.spec.containers[0]
        assert c.image == f"{platform.platform['images']['prefix']}/trainer:1.0.0", c.image
        assert [*c.command, *(c.args or [])] == ["mlops-trainer", "--version"]
        assert {"LOG_LEVEL": "debug"}.items() <= {e.name: e.value for e in c.env}.items()
        assert r.spec.active_deadline_seconds == 600


# --- gpu_sweep -------------------------------------------------------------------------------------

@pytest.mark.pipeline("gpu_sweep")
def test_gpu_sweep_variant_tasks_each_hold_exactly_their_gpus(platform, airflow, pods, observed, mlflow):
    """Each variant's train task is a pod with exactly its profile's GPUs and pool slots. Under
    dag.test() the tasks run one after another: whether variants train at the same time is the
    GPU pool's and the scheduler's (tests/cluster/test_gpu_capacity.py), not shown here."""
    variants = [{"name": "a", "profile": "gpu-1"}, {"name": "b", "profile": "gpu-4", "params": {"max_depth": 3}},
                {"name": "c", "profile": "gpu-4", "params": {"max_depth": 9}}, {"name": "d", "profile": "gpu-8"}]
    mlflow.sweep_runs = {"a": ("gpu-1", 0.90), "b": ("gpu-4", 0.93), "c": ("gpu-4", 0.97), "d": ("gpu-8", 0.95)}
    dr = run(airflow, "gpu_sweep", {"variants": variants})
    st = states(dr)
    assert dr.state == "success", st
    assert st["train_gpu_2"] == "skipped", st  # no variant on gpu-2: its mapped task is skipped
    got = pods_of(pods, "gpu_sweep", dr, observed, "gpu_sweep (4 variants: gpu-1, gpu-4 x2, gpu-8)")
    ws = workspace_of("gpu_sweep", dr)
    by_task = {}
    for r in got:
        by_task.setdefault(r.labels["task_id"], []).append(r)
    assert sorted(by_task) == ["cleanup", "evaluate", "prepare", "register", "train_gpu_1", "train_gpu_4",
                               "train_gpu_8"], sorted(by_task)
    for task_id in ("prepare", "evaluate"):  # one cpu pod per variant, in the variant's workspace
        mine = sorted(by_task[task_id], key=lambda r: int(r.labels["map_index"]))
        assert [int(r.labels["map_index"]) for r in mine] == [0, 1, 2, 3], task_id
        for r, v in zip(mine, variants, strict=True):
            check_pod(platform, r, "gpu_sweep", "cpu", f"{ws}/{v['name']}")
    for task_id, profile, names in (("train_gpu_1", "gpu-1", ["a"]), ("train_gpu_4", "gpu-4", ["b", "c"]),
                                    ("train_gpu_8", "gpu-8", ["d"])):
        mine = sorted(by_task[task_id], key=lambda r: int(r.labels["map_index"]))
        assert [int(r.labels["map_index"]) for r in mine] == list(range(len(names))), task_id
        for r, name in zip(mine, names, strict=True):
            check_pod(platform, r, "gpu_sweep", profile, f"{ws}/{name}")  # placed with exactly the profile's GPUs
            assert f"mlops.sweep_variant={name}" in r.spec.containers[0].args, r.describe()
        # what the GPU pool accounts for each of these task instances: the profile's GPUs
        assert {ti.pool_slots for ti in dr.get_task_instances() if ti.task_id == task_id} == {profile_gpus(
            platform, profile)}
    for r in got:
        assert r.phase == "Succeeded" and r.deleted, r.describe()
    (register,) = by_task["register"]
    check_pod(platform, register, "gpu_sweep", "cpu", f"{ws}/c")  # the winner's own workspace
    (cleanup,) = by_task["cleanup"]
    check_pod(platform, cleanup, "gpu_sweep", "cpu", ws)  # the whole run workspace
    assert ("set_run_tag", "run-c", "mlops.sweep_best", "true") in mlflow.calls


# --- ml_inference ----------------------------------------------------------------------------------

@pytest.mark.pipeline("ml_inference")
def test_ml_inference_batch_predict_pod_loads_the_version_the_alias_resolves_to(platform, airflow, pods, observed,
                                                                               mlflow):
    """The alias is resolved through the MLflow REST API (a stand-in answering version 3) and the
    batch_predict pod is given that version's URI; kwok runs no container, so no prediction is
    made here (a real one: the real-node end-to-end suite)."""
    dr = run(airflow, "ml_inference", {"model_name": "iris", "alias": "champion"})
    st = states(dr)
    assert dr.state == "success", st
    got = pods_of(pods, "ml_inference", dr, observed, "ml_inference")
    assert [r.labels["task_id"] for r in got] == ["load_data", "batch_predict", "cleanup"], [r.describe() for r in got]
    for r in got:
        check_pod(platform, r, "ml_inference", "cpu", workspace_of("ml_inference", dr))
    predict = got[1].spec.containers[0]
    assert "models:/iris/3" in predict.args, predict.args
    assert ("model_version_by_alias", "iris", "champion") in mlflow.calls


# --- nfs_dataset_example ---------------------------------------------------------------------------

@pytest.mark.pipeline("nfs_dataset_example")
def test_nfs_dataset_example_pod_mounts_the_datasets_claim_read_only(platform, airflow, pods, observed):
    """The pod spec (kwok runs no container: nothing is read here)."""
    dr = run(airflow, "nfs_dataset_example", {"path": "iris"})
    assert dr.state == "success", states(dr)
    (r,) = pods_of(pods, "nfs_dataset_example", dr, observed, "nfs_dataset_example")
    check_pod(platform, r, "nfs_dataset_example", "cpu")
    assert r.spec.containers[0].args[-1] == "/data/iris"
    (vol,) = [v for v in r.spec.volumes if v.name == "datasets"]
    assert vol.persistent_volume_claim.read_only is True


# --- ml_serving ------------------------------------------------------------------------------------

def serving_objects(cluster, platform, name: str) -> dict[str, Any]:
    from kubernetes.client.exceptions import ApiException

    out = {}
    for kind, read in (("Deployment", cluster.apps.read_namespaced_deployment),
                       ("Service", cluster.core.read_namespaced_service),
                       ("Ingress", cluster.networking.read_namespaced_ingress)):
        try:
            out[kind] = read(name, platform.serving_namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
    return out


@pytest.mark.pipeline("ml_serving")
def test_ml_serving_rolls_out_through_the_serving_role_and_waits_until_ready(cluster, platform, airflow, observed):
    """deploy and wait_ready run with the scheduler account's token (the chart's serving Role); kwok
    makes the model-server pods Running and Ready. The smoke request needs a running model server
    (mlflow models serve): covered by the process tests (tests/images); here Airflow marks it
    success (dag.test mark_success_pattern)."""
    dr = run(airflow, "ml_serving", {"model_name": "iris", "version": "7", "replicas": 2, "ready_timeout_seconds": 60},
             mark_success_pattern="smoke_test")
    st = states(dr)
    assert dr.state == "success", st
    assert st["rollback"] == "skipped", st
    objs = serving_objects(cluster, platform, "iris-serving")
    assert set(objs) == {"Deployment", "Service", "Ingress"}, objs.keys()
    dep = objs["Deployment"]
    assert dep.status.available_replicas == 2 and dep.metadata.annotations["mlops.airflow.apache.org/model-version"] == "7"
    assert objs["Ingress"].spec.rules[0].host == "iris.models.example.com"
    # the DAG's Deployment (the chart's own serving.models iris Deployment carries the label too)
    served = [p for p in cluster.core.list_namespaced_pod(platform.serving_namespace, label_selector="mlops.airflow.apache.org/model=iris").items
              if p.metadata.name.startswith("iris-serving-")]
    observed.append(f"  ml_serving iris v7: run {dr.state} in {dr.took:.0f}s; model-server pods: "
                    + ", ".join(f"{p.metadata.name} -> {p.spec.node_name} {p.status.phase}" for p in served))
    assert len(served) == 2 and all(p.spec.node_name in pl.CPU_NODES for p in served)


@pytest.mark.pipeline("ml_serving")
def test_ml_serving_a_failed_smoke_test_rolls_back_what_the_run_created(cluster, platform, airflow, observed):
    """Without a model server the smoke request fails (no DNS for the Service here): rollback
    deletes the Deployment/Service/Ingress this run created and fails the run."""
    dr = run(airflow, "ml_serving", {"model_name": "wine", "version": "2", "ready_timeout_seconds": 60})
    st = states(dr)
    assert dr.state == "failed", st
    assert st["wait_ready"] == "success" and st["smoke_test"] == "failed", st
    assert serving_objects(cluster, platform, "wine-serving") == {}
    observed.append(f"  ml_serving wine v2 (smoke test fails): run {dr.state} in {dr.took:.0f}s; "
                    f"rollback deleted Deployment/Service/Ingress wine-serving")


# --- GPU headroom: the pool admits, the cluster has no free GPU, the task waits -------------------

@pytest.mark.pipeline("run_job")
def test_a_gpu_task_waits_pending_while_the_cluster_has_no_free_gpu_then_runs(cluster, platform, airflow, pods,
                                                                              observed):
    """The pool design plus the pod's Pending wait (dags/README.md, "GPU headroom"): the GPU pool has
    free slots, but pods outside Airflow hold every GPU of the cluster. The task's pod is created and
    waits Pending (Unschedulable: Insufficient nvidia.com/gpu) instead of failing, bounded by the
    task's schedule_timeout_seconds (120 s here, 3600 s in the platform), and runs as soon as the
    GPUs are free. The task instance is `running` meanwhile (the operator's wait, in its worker)."""
    import threading

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from kubernetes import client

    ns = cluster.namespace("gpu-blockers", labels=pl.pss_labels("baseline"))
    blockers = []
    for node in sorted(pl.GPU_NODES):  # bound directly to the node: the scheduler counts their GPUs
        name = f"blocker-{node}"
        cluster.core.create_namespaced_pod(ns, client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, annotations={pl.DELAY_ANNOTATION: "1h"}),
            spec=client.V1PodSpec(node_name=node, restart_policy="Never", containers=[client.V1Container(
                name="c", image="registry.invalid/blocker:1",
                resources=client.V1ResourceRequirements(limits={pl.GPU: "8"}, requests={pl.GPU: "8"}))])))
        blockers.append(name)
    seen: dict[str, Any] = {}

    def free_gpus_once_the_task_waits() -> None:
        deadline = time.monotonic() + 110
        while time.monotonic() < deadline and "pod" not in seen:
            for p in cluster.core.list_namespaced_pod(TASKS_NS, label_selector="dag_id=run_job").items:
                conds = [c for c in p.status.conditions or [] if c.type == "PodScheduled" and c.status == "False"]
                if p.status.phase == "Pending" and conds and conds[0].reason == "Unschedulable":
                    time.sleep(2)  # the operator is in its wait now
                    with create_session() as session:  # the states of job_gpu_8 in every run so far
                        states_now = [str(ti.state).rsplit(".", 1)[-1].lower() for ti in
                                      session.query(TaskInstance).filter_by(dag_id="run_job", task_id="job_gpu_8")]
                    seen.update(pod=p.metadata.name, message=conds[0].message, ti_states=states_now)
                    break
            time.sleep(0.5)
        for name in blockers:  # the GPUs become free (whether or not the wait was seen)
            cluster.core.delete_namespaced_pod(name, ns, grace_period_seconds=0)

    freer = threading.Thread(target=free_gpus_once_the_task_waits, daemon=True)
    freer.start()
    try:
        dr = run(airflow, "run_job", {"image": "trainer", "tag": "1.0.0", "command": ["mlops-trainer", "--version"],
                                      "profile": "gpu-8"})
    finally:
        freer.join(timeout=130)
    st = states(dr)
    assert "pod" in seen, "the task's pod never waited Unschedulable (the blockers did not hold the GPUs)"
    assert "nvidia.com/gpu" in seen["message"], seen
    assert "running" in seen["ti_states"], seen  # while its pod waited: not failed, not retried
    assert dr.state == "success", st
    tries = {ti.task_id: ti.try_number for ti in dr.get_task_instances()}
    assert tries["job_gpu_8"] == 1, "it waited; it did not fail and retry"
    got = pods_of(pods, "run_job", dr, observed, "run_job gpu-8 while other pods hold every GPU")
    (r,) = [r for r in got if r.labels["task_id"] == "job_gpu_8"]
    assert r.name == seen["pod"] and r.phase == "Succeeded", r.describe()
    observed.append(f"    job_gpu_8 waited Pending, task running (Unschedulable: {seen['message'][:60]}...), "
                    "then ran; no retry")


# --- every other DAG of the folder ---------------------------------------------------------------
# A DAG that no test above (marker `pipeline`, here and in test_yaml_pipelines.py) runs is run
# here with its default Params and checked as every task pod is: a new DAG file is run on this
# tier without touching a test (`make test-cluster DAGS=<your copy of dags/>` for your folder).

# DAGs that cannot run on this tier, and why: the one place that says so.
NOT_ON_THIS_TIER = {
    "gpu_sweep_basecommand": "submits its job to NVIDIA Base Command Platform (NGC's cloud API), which cannot exist "
    "here; tests/dags/test_basecommand_dag.py runs it against a stand-in of that API",
}


def run_discovered(bag, covered: set[str], platform, pods, observed) -> dict[str, list[str]]:
    """Run every DAG of ``bag`` not in ``covered`` or NOT_ON_THIS_TIER with its default Params;
    DAG id -> what went wrong (empty list: the run succeeded and every pod is the platform's)."""
    results: dict[str, list[str]] = {}
    for dag_id in sorted(set(bag.dags) - covered - set(NOT_ON_THIS_TIER)):
        problems: list[str] = []
        dr = run(bag, dag_id, {})
        if dr.state != "success":
            problems.append(f"run {dr.state}: {states(dr)}")
        for r in pods_of(pods, dag_id, dr, observed, f"{dag_id} (discovered; default Params)"):
            profile = r.labels.get("mlops.airflow.apache.org/profile", "?")
            try:
                check_pod(platform, r, dag_id, profile)
                assert r.phase == "Succeeded" and r.deleted, r.describe()
            except (AssertionError, KeyError) as exc:
                problems.append(f"{r.describe()}: {exc}")
        results[dag_id] = problems
    return results


def covered_dag_ids(session: pytest.Session) -> set[str]:
    return {mark.args[0] for item in session.items for mark in item.iter_markers("pipeline")}


def test_every_other_dag_of_the_folder_runs_with_its_default_params(request, platform, airflow, pods, observed,
                                                                     mlflow, cluster_report):
    covered = covered_dag_ids(request.session)
    results = run_discovered(airflow, covered, platform, pods, observed)
    cluster_report.append(
        f"DAG folder: {len(airflow.dags)} DAGs; run by their own tests: {sorted(covered & set(airflow.dags))}; "
        f"run here with default Params: {sorted(results)}; not on this tier: {sorted(NOT_ON_THIS_TIER)}")
    failed = {dag_id: p for dag_id, p in results.items() if p}
    assert not failed, failed




def test_a_new_dag_file_in_the_folder_is_run_without_touching_a_test(platform, airflow, pods, observed, mlflow):
    """The acceptance of the discovery: a DAG file added to (a copy of) the DAG folder is found,
    run with its default Params and its pods checked; every DAG already covered is left alone."""
    from airflow.models.dagbag import DagBag

    folder = Path(airflow.dag_folder)
    # a new DAG file as an author writes one: a shipped DAG's file under another DAG id
    source = (folder / "nfs_dataset_example.py").read_text()
    assert source.count('"nfs_dataset_example"') == 1, "the template DAG file names its id once no more: pick another"
    new = folder / "discovered_example.py"
    new.write_text(source.replace('"nfs_dataset_example"', '"discovered_example"'))
    try:
        bag = DagBag(str(folder), include_examples=False, safe_mode=False)
        assert bag.import_errors == {}, bag.import_errors
        results = run_discovered(bag, set(bag.dags) - {"discovered_example"}, platform, pods, observed)
    finally:
        new.unlink()
    assert list(results) == ["discovered_example"], results
    assert results["discovered_example"] == [], results
