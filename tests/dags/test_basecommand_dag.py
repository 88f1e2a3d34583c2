"""gpu_sweep_basecommand run by Airflow itself (dag.test) against a STAND-IN NGC server.

NVIDIA's Base Command Platform cannot be reached here: tests/support/ngc_standin.py stands in for
the NGC token service and the Base Command job API on 127.0.0.1. `dag.test()` runs each task in
process and, for a deferred task, the trigger inline (Airflow 3.1: DeferTask -> the trigger's run()
-> execute_complete), so the deferral and resumption here are Airflow's own.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow_db import dag_folder
from tests.support.ngc_standin import ACE, API_KEY, INSTANCE_TYPES, NgcStandin, Standin, write_basecommand

DAG_ID = "gpu_sweep_basecommand"


@pytest.fixture(scope="module")
def airflow_db() -> Path:
    """A migrated metadata DB (sqlite in this worker's AIRFLOW_HOME) and its DAG folder."""
    return dag_folder(DAG_ID)


@pytest.fixture()
def platform_dir(tmp_path: Path, platform_envs, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kind environment's platform files plus a basecommand.json enabling the backend."""
    env = platform_envs["kind"]
    shutil.copytree(env.directory, tmp_path / "platform")
    write_basecommand(tmp_path / "platform")
    monkeypatch.setenv("MLOPS_PLATFORM_DIR", str(tmp_path / "platform"))
    monkeypatch.setenv("MLOPS_POD_TEMPLATES_DIR", str(tmp_path / "platform" / "pod-templates"))
    return tmp_path / "platform"


def run(
    folder: Path, server: NgcStandin, monkeypatch: pytest.MonkeyPatch, retries: int | None = None, **conf: Any
) -> Any:
    """dag.test() of the DAG file; `retries` overrides the job tasks' retries (dag.test() waits
    out every retry delay, 30 s and more, in real time)."""
    from airflow.models.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW_CONN_NGC_BASECOMMAND", json.dumps(server.connection()))
    bag = DagBag(str(folder / f"{DAG_ID}.py"), include_examples=False, safe_mode=False)
    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]
    if retries is not None:
        dag.get_task("job").retries = retries
    return dag.test(run_conf=conf)


def stored(run_id: str) -> tuple[list[Any], list[Any]]:
    """XCom values and rendered template fields Airflow stored for the run."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        xcoms = [x.value for x in session.query(XComModel).filter_by(dag_id=DAG_ID, run_id=run_id)]
        rendered = [r.rendered_fields for r in session.query(RenderedTaskInstanceFields).filter_by(dag_id=DAG_ID, run_id=run_id)]
    return xcoms, rendered


def test_sweep_on_four_instance_types_picks_the_best_and_leaks_no_key(
    airflow_db: Path, platform_dir: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    with NgcStandin(Standin()) as server:
        dr = run(
            airflow_db,
            server,
            monkeypatch,
            command=["python", "train.py", "--epochs", "1"],
            datasets=[{"name": "iris-train", "mount": "/data/iris"}],
        )
        tokens = list(server.state.tokens)
        jobs = list(server.state.jobs.values())
    assert dr.state == "success"
    assert sorted(j.body["aceInstance"] for j in jobs) == sorted(INSTANCE_TYPES.values())
    assert all(j.body["command"] == "python train.py --epochs 1" for j in jobs)
    # The dataset named in the conf was looked up and mounted by its id in every job.
    assert all(j.body["datasetMounts"] == [{"id": 101, "containerMountPoint": "/data/iris"}] for j in jobs)
    xcoms, rendered = stored(dr.run_id)
    compare = next(x for x in xcoms if isinstance(x, dict) and "best_profile" in x)
    assert compare["best_profile"] == "gpu-8" and len(compare["all"]) == 4
    out = capfd.readouterr()
    everything = out.out + out.err + json.dumps(xcoms, default=str) + json.dumps(rendered, default=str)
    assert "MLOPS_RESULT" in everything  # the job logs reached the task logs
    assert API_KEY not in everything
    assert not any(t in everything for t in tokens)


def test_a_failed_job_fails_the_task_with_the_platform_message(
    airflow_db: Path, platform_dir: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    state = Standin(plan=("QUEUED", "RUNNING", "FAILED"))
    with NgcStandin(state) as server:
        dr = run(airflow_db, server, monkeypatch, retries=0)
        created = state.kinds().count("create")
    assert dr.state == "failed"
    assert created == 4  # one job per profile, none retried
    out = capfd.readouterr()
    text = out.out + out.err
    assert "Base Command job 4000001 FAILED: Container exited with a non-zero status: exit code 3" in text
    # The failed job's log reached the task log too, and no credential did.
    assert "---- Base Command job 4000001 log ----" in text and "+ python train.py" in text
    assert API_KEY not in text


def test_bad_command_conf_is_refused_naming_the_key(
    airflow_db: Path, platform_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.exceptions import ParamValidationError

    with NgcStandin(Standin()) as server, pytest.raises(ParamValidationError, match="command"):
        run(airflow_db, server, monkeypatch, command="python train.py")
    assert server.state.requests == []


@pytest.mark.parametrize(
    "datasets",
    [
        [{"name": "iris train", "mount": "/data"}],  # not a dataset name
        [{"name": "iris-train"}],  # no mount point
        [{"name": "iris-train", "id": 101, "mount": "/data"}],  # both
        [{"id": "101; rm", "mount": "/data"}],  # id not a number
        [{"name": "iris-train", "mount": "data/../x"}],  # not an absolute path
    ],
)
def test_bad_datasets_conf_is_refused_naming_the_key(
    airflow_db: Path, platform_dir: Path, monkeypatch: pytest.MonkeyPatch, datasets: list[Any]
) -> None:
    from airflow.exceptions import ParamValidationError

    with NgcStandin(Standin()) as server, pytest.raises(ParamValidationError, match="datasets"):
        run(airflow_db, server, monkeypatch, datasets=datasets)
    assert server.state.requests == []


# --- the operator alone: named datasets, a missing dataset, execution_timeout --------------------------

OPERATOR_DAGS = """
import datetime

import pendulum
from airflow.sdk import DAG
from mlops_platform.basecommand.operator import BaseCommandJobOperator

TYPES = {types!r}


def job(dag_id, **kw):
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        BaseCommandJobOperator(
            task_id="job", image="mlops-org/trainer:1.0", command=["python", "train.py"],
            instance_types=TYPES, profile="gpu-1", ace={ace!r}, time_limit_seconds=600,
            poll_interval=0.2, retry_backoff=0.01, **{{"retries": 0, **kw}},
        )
    return dag


named = job("bc_named_datasets", datasets=[{{"name": "imagenet-mini", "mount": "/data/in"}}, {{"id": 102, "mount": "/data/test"}}])
missing = job("bc_missing_dataset", datasets=[{{"name": "no-such-data", "mount": "/data/in"}}])
timed = job("bc_execution_timeout", execution_timeout=datetime.timedelta(seconds=2))
killed = job("bc_killed_on_the_platform", retries=1, retry_delay=datetime.timedelta(seconds=1))
"""


@pytest.fixture(scope="module")
def operator_dags(airflow_db: Path) -> Any:
    from airflow.models.dagbag import DagBag

    path = airflow_db / "bc_operator_dags.py"
    path.write_text(OPERATOR_DAGS.format(types=INSTANCE_TYPES, ace=ACE))
    bag = DagBag(str(path), include_examples=False, safe_mode=False)
    assert bag.import_errors == {}
    return bag.dags


def run_operator(dags: Any, dag_id: str, server: NgcStandin, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_NGC_BASECOMMAND", json.dumps(server.connection()))
    return dags[dag_id].test()


def test_operator_resolves_dataset_names_before_submitting(
    operator_dags: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with NgcStandin(Standin()) as server:
        dr = run_operator(operator_dags, "bc_named_datasets", server, monkeypatch)
        (job,) = server.state.jobs.values()
        kinds = server.state.kinds()
    assert dr.state == "success"
    assert job.body["datasetMounts"] == [
        {"id": 102, "containerMountPoint": "/data/test"},
        {"id": 103, "containerMountPoint": "/data/in"},
    ]
    assert kinds.index("datasets") < kinds.index("create")


def test_operator_fails_without_retry_on_a_dataset_that_does_not_exist(
    operator_dags: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    with NgcStandin(Standin()) as server:
        dr = run_operator(operator_dags, "bc_missing_dataset", server, monkeypatch)
        created = server.state.kinds().count("create")
    assert dr.state == "failed" and created == 0
    out = capfd.readouterr()
    assert "dataset 'no-such-data': no dataset of that name in org mlops-org, team ml-team" in out.out + out.err


def test_execution_timeout_kills_the_deferred_job(
    operator_dags: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Airflow 3.1 does not enforce execution_timeout while a task is deferred; the operator
    bounds the trigger's deadline by it, and the trigger kills the job when it passes."""
    with NgcStandin(Standin(plan=("QUEUED",) * 100_000)) as server:
        dr = run_operator(operator_dags, "bc_execution_timeout", server, monkeypatch)
        killed = server.state.killed()
        kill_paths = server.state.paths("kill")
    assert dr.state == "failed"
    assert killed == [4000001]
    assert kill_paths == ["/v2/org/mlops-org/jobs/4000001?reason=Airflow%3A+deadline+passed"]
    out = capfd.readouterr()
    assert "Base Command job 4000001 QUEUED: deadline passed while QUEUED; killed" in out.out + out.err


def test_job_killed_on_the_platform_fails_the_task_without_retry(
    operator_dags: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A job killed on the platform (a user, an admin) was stopped on purpose: the task fails
    with the platform's status and is not retried (the task allows one retry)."""
    with NgcStandin(Standin(plan=("QUEUED", "RUNNING", "KILLED_BY_USER"))) as server:
        dr = run_operator(operator_dags, "bc_killed_on_the_platform", server, monkeypatch)
        created = server.state.kinds().count("create")
    assert dr.state == "failed" and created == 1
    out = capfd.readouterr()
    text = out.out + out.err
    assert "Base Command job 4000001 KILLED_BY_USER" in text
    assert "---- Base Command job 4000001 log ----" in text  # it ran: its log is in the task log
