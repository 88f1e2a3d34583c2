"""DAG policies: ownership, retries, docs, tags, profiles, no shell with templated conf,
no network or database at parse time, default confs valid (rules of tests/dags/policy.py)."""

from __future__ import annotations

import os
import socket

import pytest

from tests.dags.dag_tasks import is_pod_task, map_indexes, task_value
from tests.dags.policy import check_documented, rule
from tests.support.airflow_pods import template_context
from tests.support.platform_env import DAG_FILES, DAG_FOLDER, expected_dags, load_dagbag

SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "ash"}


def _dags(dagbags):
    for env_name, bag in dagbags.items():
        for dag in bag.dags.values():
            yield env_name, dag


@rule("tags")
def test_every_dag_has_tags(dagbags) -> None:
    untagged = [f"{env_name}:{dag.dag_id}" for env_name, dag in _dags(dagbags) if not dag.tags]
    assert untagged == [], "DAGs without tags (tags=[...], or **cfg.dag_args(dag_id, ...))"


@rule("doc")
def test_every_dag_is_documented(dagbags) -> None:
    check_documented(dagbags)


@rule("retries")
def test_every_dag_and_task_retries(dagbags) -> None:
    for env_name, dag in _dags(dagbags):
        where = f"{env_name}:{dag.dag_id}"
        assert (dag.default_args or {}).get("retries", 0) >= 1, f"{where}: default_args retries < 1"
        for task in dag.tasks:
            assert task.retries >= 1, f"{where}.{task.task_id}: retries {task.retries}"
            if is_pod_task(task):
                assert getattr(task, "retry_exponential_backoff", False), (
                    f"{where}.{task.task_id}: no retry_exponential_backoff"
                )


@rule("owner")
def test_every_task_has_an_owner(dagbags) -> None:
    for env_name, dag in _dags(dagbags):
        for task in dag.tasks:
            assert task.owner not in ("", "airflow"), f"{env_name}:{dag.dag_id}.{task.task_id}: owner {task.owner!r}"


@rule("path-filter")
def test_every_dag_registers_the_workspace_path_filter(dagbags) -> None:
    from mlops_platform.common import PATH_FILTER

    for env_name, dag in _dags(dagbags):
        assert PATH_FILTER in (dag.user_defined_filters or {}), f"{env_name}:{dag.dag_id}"


@rule("profile")
def test_every_pod_task_names_an_existing_profile(dagbags, platform_envs) -> None:
    for env_name, bag in dagbags.items():
        env = platform_envs[env_name]
        files = {str(env.templates_dir / f"{name}.yaml") for name in env.platform["profiles"]}
        for dag in bag.dags.values():
            for task in dag.tasks:
                if not is_pod_task(task):
                    continue
                for index in map_indexes(task):
                    template = task_value(task, "pod_template_file", index)
                    assert template in files, f"{env_name}:{dag.dag_id}.{task.task_id}[{index}]: {template}"


@rule("no-shell-conf")
def test_no_shell_receives_templated_conf(dagbags) -> None:
    for _env_name, dag in _dags(dagbags):
        for task in dag.tasks:
            if not is_pod_task(task):
                continue
            for index in map_indexes(task):
                cmds = task_value(task, "cmds", index)
                args = task_value(task, "arguments", index) or []
                if isinstance(cmds, str):  # one template rendering to a list (run_job)
                    assert dag.render_template_as_native_obj, f"{dag.dag_id}.{task.task_id}"
                    continue
                argv = [*cmds, *args]
                program = os.path.basename(argv[0])
                for i, arg in enumerate(argv[:-1]):
                    if (
                        arg.startswith("-")
                        and arg.endswith("c")
                        and (program in SHELLS or program.startswith("python"))
                    ):
                        code = argv[i + 1]
                        assert "{{" not in code and "{%" not in code, (
                            f"{dag.dag_id}.{task.task_id}: templated code passed to {program} {arg}"
                        )


@rule("default-conf")
def test_default_confs_are_valid(dagbags, platform_envs) -> None:
    for env_name, bag in dagbags.items():
        with platform_envs[env_name].active():
            for dag in bag.dags.values():
                template_context(dag, dag.tasks[0], conf={})


@rule("parse-offline")
def test_parsing_needs_no_network_and_no_variables(platform_envs, monkeypatch) -> None:
    """The DAG folder parses with sockets and Airflow Variables/Connections unavailable."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access at DAG parse time")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    from airflow.sdk import Connection, Variable

    monkeypatch.setattr(Variable, "get", refuse)
    monkeypatch.setattr(Connection, "get", refuse)
    for name, env in platform_envs.items():
        bag = load_dagbag(DAG_FOLDER, env)
        assert bag.import_errors == {}, f"{name}: " + "\n".join(bag.import_errors.values())
        assert set(bag.dags) == expected_dags(), name


@rule("thin-files")
@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_files_are_thin(dag_file) -> None:
    """Heavy imports stay inside tasks (kubernetes client, MLflow REST helpers)."""
    import ast

    tree = ast.parse(dag_file.read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {(n.module or "") if isinstance(n, ast.ImportFrom) else n.names[0].name for n in top}
    heavy = {"kubernetes", "mlflow", "requests", "mlops_platform.serving", "mlops_platform.mlflow_rest"} & names
    assert not heavy, f"{dag_file.name}: imports {sorted(heavy)} at top level (import them inside the task)"


@rule("pod-settings")
def test_pod_task_operator_settings(dagbags) -> None:
    """Retries with backoff, pod kept on failure, start/schedule timeouts, logs, reattach."""
    for _env_name, dag in _dags(dagbags):
        for task in dag.tasks:
            if not is_pod_task(task):
                continue
            where = f"{dag.dag_id}.{task.task_id}"
            get = (
                (lambda f, t=task: t.partial_kwargs.get(f))
                if hasattr(task, "partial_kwargs")
                else (lambda f, t=task: getattr(t, f))
            )
            assert str(get("on_finish_action")) in (
                "delete_succeeded_pod",
                "OnFinishAction.DELETE_SUCCEEDED_POD",
            ), where
            assert get("startup_timeout_seconds") >= 300, where
            assert get("schedule_timeout_seconds") >= get("startup_timeout_seconds"), where
            assert get("get_logs") is True, where
            assert task.retry_exponential_backoff, where
            if not hasattr(task, "partial_kwargs"):
                assert task.reattach_on_restart is True, where


CLEANUPS = {
    "ml_training": "cleanup",
    "ml_inference": "cleanup",
    "gpu_sweep": "cleanup",
    "train_gpu_yaml": "cleanup",
}


@pytest.mark.parametrize("dag_id", sorted(CLEANUPS))
def test_cleanup_runs_all_done_but_a_failed_run_stays_failed(dagbags, dag_id) -> None:
    """Airflow's own rule (DagRun._tis_for_dagrun_state on the serialized DAG): the cleanup
    (`all_done`) is not what decides the run's state; the work tasks are."""
    from collections import namedtuple

    from airflow.models.dagrun import DagRun
    from airflow.serialization.serialized_objects import SerializedDAG

    dag = dagbags["production.example"].dags[dag_id]
    sdag = SerializedDAG.from_dict(SerializedDAG.to_dict(dag))
    cleanup = sdag.get_task(CLEANUPS[dag_id])
    assert str(cleanup.trigger_rule) in ("all_done", "TriggerRule.ALL_DONE")
    assert cleanup.is_teardown
    ti = namedtuple("TI", "task_id state")  # hashable stand-in for a TaskInstance row
    tis = [ti(t.task_id, "success") for t in sdag.tasks]
    deciding = {ti.task_id for ti in DagRun._tis_for_dagrun_state(None, dag=sdag, tis=tis)}
    assert CLEANUPS[dag_id] not in deciding
    assert deciding, "some work task decides the run's state"
    upstream = {t.task_id for t in sdag.tasks if t.task_id != CLEANUPS[dag_id]}
    assert deciding <= upstream
