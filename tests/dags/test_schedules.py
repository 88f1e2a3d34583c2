"""Schedules per environment: chart value `pipelines.schedules` -> platform.json `schedules` ->
the DAG's `schedule` (values/production.example.yaml runs ml_inference daily at 02:00 UTC;
values/kind.yaml schedules nothing)."""

from __future__ import annotations

import copy

import pytest

from tests.dags.policy import rule
from tests.support import paths
from tests.support.helm import render_chart


def _schedule(dag) -> str | None:
    """The cron expression / preset the DAG was given (None: triggered only)."""
    from airflow.timetables.simple import NullTimetable

    timetable = dag.timetable
    if isinstance(timetable, NullTimetable):
        return None
    return getattr(timetable, "_expression", None) or timetable.summary


def test_production_example_runs_ml_inference_daily(dagbags, platform_envs) -> None:
    assert platform_envs["production.example"].platform["schedules"] == {"ml_inference": "0 2 * * *"}
    dag = dagbags["production.example"].dags["ml_inference"]
    assert _schedule(dag) == "0 2 * * *"
    assert dag.catchup is False, "a new deployment does not back-fill past days"
    others = {d: _schedule(dag) for d, dag in dagbags["production.example"].dags.items() if d != "ml_inference"}
    assert set(others.values()) == {None}


def test_kind_schedules_nothing(dagbags, platform_envs) -> None:
    assert platform_envs["kind"].platform["schedules"] == {}
    assert {d: _schedule(dag) for d, dag in dagbags["kind"].dags.items()} == dict.fromkeys(dagbags["kind"].dags)


@rule("schedules")
def test_every_scheduled_dag_exists_and_takes_its_schedule(dagbags, platform_envs) -> None:
    """A schedule naming no DAG of the folder (typo) or a DAG that ignores it fails here."""
    for name, env in platform_envs.items():
        for dag_id, expression in env.platform["schedules"].items():
            assert dag_id in dagbags[name].dags, f"{name}: pipelines.schedules names unknown DAG {dag_id!r}"
            assert _schedule(dagbags[name].dags[dag_id]) == expression


@pytest.mark.parametrize("dag_id", ["ml_inference", "ml_training", "gpu_sweep", "nfs_dataset_example"])
def test_the_documented_dags_read_their_schedule(dag_id, platform_envs, tmp_path) -> None:
    from tests.support.platform_env import load_dagbag

    env = platform_envs["kind"].with_platform(tmp_path, schedules={dag_id: "30 1 * * 1"})
    bag = load_dagbag(paths.DAGS_DIR / f"{dag_id}.py", env)
    assert bag.import_errors == {}
    assert _schedule(bag.dags[dag_id]) == "30 1 * * 1"


@pytest.mark.parametrize(
    ("schedules", "message"),
    [
        ({"ml_inference": "rm -rf /"}, "key 'schedules.ml_inference'"),
        ({"ml_inference": "61 2 * * *"}, "key 'schedules.ml_inference': '61 2 * * *' is not a valid cron"),
        ({"ml_inference": "@sometimes"}, "key 'schedules.ml_inference'"),
        ({"ml inference": "@daily"}, "key 'schedules'"),
        ({"ml_inference": 5}, "key 'schedules.ml_inference'"),
    ],
    ids=["shell", "minute-61", "unknown-preset", "bad-dag-id", "not-a-string"],
)
def test_a_bad_schedule_names_the_key(platform_envs, schedules, message) -> None:
    from mlops_platform.config import PlatformConfigError, parse_platform

    env = platform_envs["kind"]
    doc = copy.deepcopy(env.platform)
    doc["schedules"] = schedules
    with env.active(), pytest.raises(PlatformConfigError) as info:
        parse_platform(doc, "platform.json")
    assert message in str(info.value)


def test_the_chart_knows_the_dag_ids_of_the_folder(platform_envs, tmp_path) -> None:
    """charts/airflow-mlops/files/dag-ids.json is how the chart refuses a schedule for a DAG that
    does not exist (a typo) or that ignores it: it must list exactly the DAGs of dags/ that take
    their schedule from pipelines.schedules, and the others as triggered-only."""
    import json

    from tests.support.platform_env import load_dagbag

    ids = json.loads((paths.CHART_DIR / "files" / "dag-ids.json").read_text())
    every = sorted(load_dagbag(paths.DAGS_DIR, platform_envs["kind"]).dags)
    expression = "30 1 * * 1"
    env = platform_envs["kind"].with_platform(tmp_path, schedules=dict.fromkeys(every, expression))
    bag = load_dagbag(paths.DAGS_DIR, env)
    assert bag.import_errors == {}
    scheduled = sorted(d for d, dag in bag.dags.items() if _schedule(dag) == expression)
    triggered = sorted(d for d, dag in bag.dags.items() if _schedule(dag) is None)
    assert sorted(scheduled + triggered) == every
    assert (ids["scheduled"], ids["triggered"]) == (scheduled, triggered), (
        "charts/airflow-mlops/files/dag-ids.json is out of date with dags/; set\n"
        + json.dumps({"scheduled": scheduled, "triggered": triggered}, indent=2)
    )


def test_the_chart_refuses_a_bad_schedule() -> None:
    with pytest.raises(Exception, match="schedules"):
        render_chart(values={"pipelines": {"schedules": {"ml_inference": "every day"}}}, show_only=["templates/platform/platform-configmap.yaml"])
