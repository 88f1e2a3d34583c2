"""Adversarial DAG run confs: each is rejected with ParamValidationError before any pod exists."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dags.dag_tasks import pod_tasks, xcoms_for
from tests.support.airflow_pods import build_pod

# (dag_id, conf, what is wrong)
ADVERSARIAL: list[tuple[str, dict[str, Any], str]] = [
    ("run_job", {"command": "rm -rf / --no-preserve-root"}, "command as a shell string"),
    ("run_job", {"command": ["echo", "a\x00b"]}, "NUL byte in an argument"),
    ("run_job", {"env": {"NVIDIA_VISIBLE_DEVICES": "all"}}, "GPU visibility env"),
    ("run_job", {"env": {"LD_PRELOAD\n": "/tmp/x.so"}}, "env name with a newline"),
    ("run_job", {"command": []}, "empty command"),
    ("run_job", {"command": ["x"] * 65}, "too many arguments"),
    ("run_job", {"command": ["echo", "y" * 1025]}, "oversized argument"),
    ("run_job", {"command": ["echo", 1]}, "argument of the wrong type"),
    ("run_job", {"command": ["echo", "a\x00b"]}, "NUL byte in an argument"),
    ("run_job", {"image": "evil.example.com/miner"}, "another registry"),
    ("run_job", {"image": "localhost:5000/miner"}, "another registry with a port"),
    ("run_job", {"image": "../trainer"}, "path traversal in the image name"),
    ("run_job", {"image": "trainer;reboot"}, "shell metacharacters in the image name"),
    ("run_job", {"image": "Trainer"}, "upper case image name"),
    ("run_job", {"tag": "latest"}, "latest tag"),
    ("run_job", {"tag": "1.0$(reboot)"}, "shell metacharacters in the tag"),
    ("run_job", {"tag": "a" * 129}, "oversized tag"),
    ("run_job", {"tag": "sha256:abc"}, "digest instead of a tag"),
    ("run_job", {"profile": "gpu-16"}, "unknown profile"),
    ("run_job", {"profile": "../cpu"}, "path traversal in the profile"),
    ("run_job", {"profile": ["cpu"]}, "profile of the wrong type"),
    ("run_job", {"env": {"lower_case": "x"}}, "bad env var name"),
    ("run_job", {"env": {"A-B": "x"}}, "bad env var name with a dash"),
    ("run_job", {"env": {"LD_PRELOAD": "/tmp/x.so"}}, "reserved env var"),
    ("run_job", {"env": {"MLOPS_WORKSPACE_SUBPATH": "../../other"}}, "workspace escape via env"),
    ("run_job", {"env": {"A": 1}}, "env value of the wrong type"),
    ("run_job", {"env": {"A": "v" * 4097}}, "oversized env value"),
    ("run_job", {"env": {f"V{i}": "x" for i in range(33)}}, "too many env vars"),
    ("run_job", {"env": ["A=1"]}, "env as a list"),
    ("run_job", {"timeout_seconds": -1}, "negative timeout"),
    ("run_job", {"timeout_seconds": 10**9}, "huge timeout"),
    ("run_job", {"timeout_seconds": "600"}, "timeout as a string"),
    ("run_job", {"timeout_seconds": True}, "timeout as a boolean"),
    ("ml_training", {"profile": "gpu-3"}, "unknown profile"),
    ("ml_training", {"profile": "gpu-1; reboot"}, "shell metacharacters in the profile"),
    ("ml_training", {"model_name": "../../etc"}, "path traversal in the model name"),
    ("ml_training", {"model_name": "x" * 41}, "oversized model name"),
    ("ml_training", {"seed": -5}, "negative seed"),
    ("ml_training", {"dataset": "/etc/passwd"}, "unknown data set"),
    ("gpu_sweep", {"model_type": "__import__('os')"}, "unknown model type"),
    ("ml_inference", {"alias": "champion' OR '1'='1"}, "quote injection in the alias"),
    ("nfs_dataset_example", {"path": "../../etc/shadow"}, "path traversal below /data"),
    ("nfs_dataset_example", {"path": "/etc/shadow"}, "absolute path"),
    ("nfs_dataset_example", {"path": "iris/../../x"}, "traversal in the middle"),
    ("ml_serving", {"replicas": 1000}, "huge replica count"),
    ("ml_serving", {"version": "-1"}, "negative version"),
    ("ml_serving", {"smoke_input": {"dataframe_split": {"columns": ["a"], "data": []}, "x": 1}}, "extra key"),
]


def test_there_are_at_least_15_cases() -> None:
    assert len(ADVERSARIAL) >= 15


@pytest.fixture(scope="module")
def prod_bag(platform_envs, dagbags):
    return platform_envs["production.example"], dagbags["production.example"]


@pytest.fixture()
def built_pods(monkeypatch) -> list[str]:
    """Task ids of every pod the operator builds during the test (a spy on the real builder)."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    built: list[str] = []
    original = KubernetesPodOperator.build_pod_request_obj

    def spy(self, *args, **kwargs):
        built.append(self.task_id)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(KubernetesPodOperator, "build_pod_request_obj", spy)
    return built


@pytest.mark.parametrize(("dag_id", "conf", "why"), ADVERSARIAL, ids=[f"{d}:{w}" for d, _, w in ADVERSARIAL])
def test_adversarial_conf_is_rejected_before_any_pod(prod_bag, built_pods, dag_id, conf, why) -> None:
    from airflow.exceptions import ParamValidationError

    env, bag = prod_bag
    dag = bag.dags[dag_id]
    tasks = [(task, index) for d, task, index in pod_tasks(bag) if d.dag_id == dag_id]
    if not tasks:  # ml_serving has no pod task: its params are validated for any task
        tasks = [(dag.tasks[0], -1)]
    with env.active():
        for task, index in tasks:
            with pytest.raises(ParamValidationError):
                build_pod(dag, task, conf=conf, map_index=index, xcoms=xcoms_for(dag, {}))
    assert built_pods == [], f"a pod was built for {why}"


def test_the_spy_sees_a_valid_conf(prod_bag, built_pods) -> None:
    """Control: the same path with a valid conf does build the pod (the spy works)."""
    env, bag = prod_bag
    dag = bag.dags["run_job"]
    with env.active():
        build_pod(dag, dag.get_task("job_cpu"), conf={"command": ["true"], "tag": "1.0"})
    assert built_pods == ["job_cpu"]
