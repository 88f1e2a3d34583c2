"""Every pod task's pod, built exactly as the operator would in the cluster, from the chart's
rendered pod templates and platform.json (values/kind.yaml and values/production.example.yaml, or
`make test-dags VALUES=`), validated like the chart's objects and checked against the platform
contract (rules of tests/dags/policy.py; the tests without `@rule` check the repository's DAGs)."""

from __future__ import annotations

import pytest

from tests.dags.dag_tasks import built_pods, is_pod_task
from tests.dags.policy import rule
from tests.support import paths
from tests.support.k8s import restricted_violations, validate_objects
from tests.support.platform_env import ENVIRONMENTS

RUN_ID = "manual__2026-03-04T05:06:07.890123+00:00"
GPU = "nvidia.com/gpu"


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def built(request, platform_envs, dagbags):
    env = platform_envs[request.param]
    return env, built_pods(env, dagbags[request.param])


@rule("pod-valid")
def test_every_pod_task_was_built(built, dagbags) -> None:
    """Discovered, not listed: every DAG of the folder that has a pod task had its pods built."""
    env, pods = built
    dags = {p[1].dag_id for p in pods}
    bag = dagbags[env.name]
    with_pods = {dag_id for dag_id, dag in bag.dags.items() if any(is_pod_task(t) for t in dag.tasks)}
    assert dags == with_pods
    built_tasks = {(p[1].dag_id, p[2].task_id) for p in pods}
    missing = {(d.dag_id, t.task_id) for d in bag.dags.values() for t in d.tasks if is_pod_task(t)} - built_tasks
    assert missing == set()


def test_the_repositorys_pods_cover_every_profile(built) -> None:
    """The shipped DAGs: pods of every GPU count, gpu_sweep one variant per GPU profile."""
    env, pods = built
    assert {p[1].dag_id for p in pods}, "the shipped DAGs have pod tasks"
    assert {env.platform["profiles"][_profile(p[-1])]["gpus"] for p in pods} >= {0, 1, 2, 4, 8}
    sweep = {
        (task.task_id, index) for _, dag, task, index, _, _ in pods if dag.dag_id == "gpu_sweep" and "train" in task.task_id
    }
    assert sweep == {(f"train_gpu_{n}", 0) for n in (1, 2, 4, 8)}, "gpu_sweep's default variants: one per GPU profile"


@rule("pod-valid")
def test_pods_are_valid_kubernetes_objects(built) -> None:
    env, pods = built
    objects = [{**pod, "__source__": label} for label, *_, pod in pods]
    validate_objects(objects, versions=paths.KUBE_VERSIONS)


@rule("pod-valid")
def test_pods_are_restricted(built) -> None:
    env, pods = built
    problems = [v for label, *_, pod in pods for v in restricted_violations(pod["spec"], label)]
    assert problems == []


def _profile(pod: dict) -> str:
    return pod["metadata"]["labels"]["mlops.airflow.apache.org/profile"]


@rule("gpus")
def test_gpu_limits_equal_the_profile(built) -> None:
    env, pods = built
    profiles = env.platform["profiles"]
    for label, _dag, _task, _index, _conf, pod in pods:
        (container,) = pod["spec"]["containers"]
        profile = _profile(pod)
        gpus = profiles[profile]["gpus"]
        limits = (container.get("resources") or {}).get("limits") or {}
        assert str(limits.get(GPU, "0")) == str(gpus), f"{label}: {GPU} limit {limits.get(GPU)} != {gpus}"
        env_vars = {e["name"]: e.get("value") for e in container["env"]}
        assert env_vars["MLOPS_PROFILE"] == profile, label
        if gpus:
            tolerations = pod["spec"].get("tolerations") or []
            assert any(t.get("key") == GPU for t in tolerations), (
                f"{label}: no GPU toleration from the template"
            )


@rule("registry")
def test_pull_secret_and_registry(built) -> None:
    env, pods = built
    registry = env.platform["registry"]
    prefix = env.platform["images"]["prefix"]
    for label, *_, pod in pods:
        secrets = pod["spec"].get("imagePullSecrets")
        if registry["enabled"]:
            assert secrets == [{"name": registry["pullSecret"]}], label
        else:
            assert not secrets, label
        image = pod["spec"]["containers"][0]["image"]
        assert image.startswith(prefix + "/"), f"{label}: {image} not from {prefix}/"
    if env.name == "production.example":
        assert registry["enabled"], "the production example uses a private registry"


@rule("workspace")
def test_workspace_is_the_runs_own_sub_path(built) -> None:
    from mlops_platform.common import path_segment

    env, pods = built
    if env.name in ("kind", "production.example"):
        assert env.platform["workspace"]["enabled"], "the shipped values files enable the workspace"
    if not env.platform["workspace"]["enabled"]:
        for label, *_, pod in pods:
            mounts = [m["mountPath"] for m in pod["spec"]["containers"][0].get("volumeMounts") or []]
            assert "/workspace" not in mounts, f"{label}: /workspace mounted with the workspace off"
        return
    run_dir = path_segment(RUN_ID)
    assert ":" not in run_dir and "+" not in run_dir
    for label, dag, _task, _index, _conf, pod in pods:
        (container,) = pod["spec"]["containers"]
        env_vars = [e["name"] for e in container["env"]]
        assert len(env_vars) == len(set(env_vars)), f"{label}: duplicate env {env_vars}"
        sub_path = {e["name"]: e.get("value") for e in container["env"]}["MLOPS_WORKSPACE_SUBPATH"]
        assert sub_path == f"{dag.dag_id}/{run_dir}" or sub_path.startswith(f"{dag.dag_id}/{run_dir}/"), label
        assert ".." not in sub_path.split("/"), label
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/workspace"]
        assert mount.get("subPathExpr") == "$(MLOPS_WORKSPACE_SUBPATH)", label
        assert "subPath" not in mount, label


@rule("namespace", "gpus")
def test_namespace_pool_and_slots(built) -> None:
    env, pods = built
    profiles = env.platform["profiles"]
    for label, dag, task, index, _conf, pod in pods:
        assert pod["metadata"]["namespace"] == env.platform["tasks"]["namespace"], label
        labels = pod["metadata"]["labels"]
        # dag/task/run labels: how the operator finds (re-attaches to) its pod after a restart
        assert labels["dag_id"] == dag.dag_id and labels["task_id"] == task.task_id, label
        assert labels["run_id"] and labels["try_number"] == "1", label
        assert labels.get("map_index") == (str(index) if index >= 0 else None), label
        gpus = profiles[_profile(pod)]["gpus"]
        if index < 0:
            assert task.pool_slots == max(1, gpus), f"{label}: pool_slots {task.pool_slots} != {gpus}"
        elif dag.dag_id == "gpu_sweep":
            # one mapped task per profile: every variant reserves exactly its own GPUs
            assert task.pool_slots == max(1, gpus), f"{label}: pool_slots {task.pool_slots} != {gpus}"
        else:
            # mapped_profile_task: pool_slots cannot vary per map index, it reserves the largest count.
            assert task.pool_slots >= max(1, gpus), label
        if gpus:
            assert task.pool == env.platform["gpuPool"]["name"], label


def test_sweep_variants_hold_exactly_their_profiles_gpus(built) -> None:
    env, pods = built
    trains = [(t, i, p) for _l, d, t, i, _c, p in pods if d.dag_id == "gpu_sweep" and t.task_id.startswith("train_")]
    assert sorted(_profile(p) for _t, _i, p in trains) == ["gpu-1", "gpu-2", "gpu-4", "gpu-8"]
    for task, _index, pod in trains:
        gpus = env.platform["profiles"][_profile(pod)]["gpus"]
        assert task.task_id == "train_" + _profile(pod).replace("-", "_")
        assert task.pool_slots == gpus and task.pool == env.platform["gpuPool"]["name"]
        assert task.partial_kwargs["pod_template_file"].endswith(f"/{_profile(pod)}.yaml")


def test_run_job_uses_the_conf_safely(built) -> None:
    env, pods = built
    gpu_runs = [p for _l, d, t, _i, c, p in pods if d.dag_id == "run_job" and c and t.task_id == "job_gpu_2"]
    (pod,) = gpu_runs
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["mlops-trainer", "prepare", "--workspace", "/workspace"]
    assert container["image"] == f"{env.platform['images']['prefix']}/trainer:1.2.3"
    env_vars = {e["name"]: e.get("value") for e in container["env"]}
    assert env_vars["MY_SETTING"] == "a b; $(not a shell)"  # a value, never shell code
    assert pod["spec"]["activeDeadlineSeconds"] == 600


@rule("gpu-wait")
def test_gpu_tasks_wait_for_gpus_a_bounded_documented_time(built) -> None:
    """GPU headroom (dags/README.md): a GPU pod the cluster cannot place yet waits Pending, at most
    schedule_timeout_seconds (chart value pools.gpuMaxWaitSeconds, platform.json
    gpuPool.maxWaitSeconds; CPU 600 s), then the try fails and the retries take over."""
    env, pods = built
    profiles = env.platform["profiles"]
    bound = env.platform["gpuPool"]["maxWaitSeconds"]
    assert 60 <= bound <= 86400
    for label, _dag, task, _index, _conf, pod in pods:
        gpus = profiles[_profile(pod)]["gpus"]
        timeout = task.partial_kwargs["schedule_timeout_seconds"] if hasattr(task, "partial_kwargs") else (
            task.schedule_timeout_seconds
        )
        assert timeout == (bound if gpus else 600), f"{label}: schedule_timeout_seconds {timeout}"


def test_a_bad_gpu_wait_bound_is_refused_naming_the_key(platform_envs) -> None:
    from mlops_platform.config import PlatformConfigError, parse_platform

    env = platform_envs["production.example"]
    doc = {**env.platform, "gpuPool": {**env.platform["gpuPool"], "maxWaitSeconds": 5}}
    with pytest.raises(PlatformConfigError, match="gpuPool.maxWaitSeconds"):
        parse_platform(doc, "platform.json", str(env.directory / "platform.schema.json"))
