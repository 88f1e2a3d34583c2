"""Secrets for tasks: a task references Kubernetes Secrets by name and key, out of the chart's
allow-list (values `pipelines.secrets` -> platform.json `taskSecrets`); the pod reads the value
with `secretKeyRef`. values/production.example.yaml allows hf-token/token; values/kind.yaml none."""

from __future__ import annotations

import json

import pytest

from tests.support.airflow_pods import build_pod
from tests.support.helm import render_chart

RUN_ID = "manual__2026-03-04T05:06:07.890123+00:00"


def _job_task(bag, profile: str = "cpu"):
    dag = bag.dags["run_job"]
    return dag, dag.get_task(f"job_{profile}")


def test_platform_json_carries_the_allow_list(platform_envs) -> None:
    assert platform_envs["production.example"].platform["taskSecrets"] == {"hf-token": ["token"]}
    assert platform_envs["kind"].platform["taskSecrets"] == {}


def test_run_job_takes_an_allowed_secret_as_secret_key_ref(platform_envs, dagbags) -> None:
    env = platform_envs["production.example"]
    dag, task = _job_task(dagbags["production.example"])
    conf = {"secrets": {"HF_TOKEN": "hf-token/token"}, "env": {"LOG_LEVEL": "debug"}}
    with env.active():
        pod = build_pod(dag, task, conf=conf, run_id=RUN_ID)
    (container,) = pod["spec"]["containers"]
    by_name = {e["name"]: e for e in container["env"]}
    assert by_name["HF_TOKEN"] == {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token", "optional": False}},
    }
    assert by_name["LOG_LEVEL"]["value"] == "debug"


@pytest.mark.parametrize(
    "secrets",
    [{"HF_TOKEN": "hf-token/other-key"}, {"HF_TOKEN": "airflow-admin/password"}, {"HF_TOKEN": "hf-token"}],
    ids=["key-not-allowed", "secret-not-allowed", "no-key"],
)
def test_a_reference_outside_the_allow_list_is_refused_at_trigger_time(
    dagbags, platform_envs, secrets
) -> None:
    from airflow.exceptions import ParamValidationError
    from airflow.sdk.definitions.param import ParamsDict

    dag = dagbags["production.example"].dags["run_job"]
    params = ParamsDict(dag.params)
    with pytest.raises(ParamValidationError, match="Invalid input for param secrets"):
        params["secrets"] = secrets


def test_kind_allows_no_secret_at_all(dagbags) -> None:
    from airflow.exceptions import ParamValidationError
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict(dagbags["kind"].dags["run_job"].params)
    with pytest.raises(ParamValidationError, match="Invalid input for param secrets"):
        params["secrets"] = {"HF_TOKEN": "hf-token/token"}


def test_pod_build_refuses_a_reference_outside_the_allow_list(platform_envs) -> None:
    """Defence in depth: a DAG whose Param does not restrict the references still cannot build the pod."""
    import pendulum
    from airflow.sdk import DAG, Param
    from mlops_platform.config import load_platform
    from mlops_platform.pods import pod_task

    env = platform_envs["production.example"]
    with env.active():
        cfg = load_platform()
        with DAG(
            "loose",
            schedule=None,
            start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
            params={"secrets": Param({}, type="object")},
            render_template_as_native_obj=True,
            user_defined_filters=cfg.dag_defaults()["user_defined_filters"],
        ) as dag:
            task = pod_task("t", ["true"], profile="cpu", cfg=cfg, secret_env="{{ params.secrets }}")
        build_pod(dag, task, conf={"secrets": {"TOKEN": "hf-token/token"}}, run_id=RUN_ID)
        with pytest.raises(ValueError, match="not in the chart's pipelines.secrets allow-list"):
            build_pod(dag, task, conf={"secrets": {"TOKEN": "airflow-admin/password"}}, run_id=RUN_ID)


def test_a_literal_reference_is_refused_at_parse_time(platform_envs) -> None:
    from mlops_platform.config import load_platform
    from mlops_platform.pods import pod_task

    env = platform_envs["production.example"]
    with env.active():
        cfg = load_platform()
        assert pod_task("ok", ["true"], profile="cpu", cfg=cfg, secret_env={"HF_TOKEN": "hf-token/token"})
        with pytest.raises(
            ValueError, match=r"'db/password', not in the chart's pipelines.secrets allow-list"
        ):
            pod_task("bad", ["true"], profile="cpu", cfg=cfg, secret_env={"DB": "db/password"})
        with pytest.raises(ValueError, match="'MLOPS_PROFILE' is reserved by the platform"):
            pod_task(
                "reserved", ["true"], profile="cpu", cfg=cfg, secret_env={"MLOPS_PROFILE": "hf-token/token"}
            )


def test_the_chart_renders_and_types_the_allow_list() -> None:
    (cm,) = render_chart(
        values={"pipelines": {"secrets": [{"name": "hf-token", "keys": ["token", "user"]}]}},
        show_only=["templates/platform/platform-configmap.yaml"],
    )
    assert json.loads(cm["data"]["platform.json"])["taskSecrets"] == {"hf-token": ["token", "user"]}
    with pytest.raises(Exception, match="secrets"):
        render_chart(
            values={"pipelines": {"secrets": [{"name": "Bad_Name", "keys": []}]}},
            show_only=["templates/platform/platform-configmap.yaml"],
        )
