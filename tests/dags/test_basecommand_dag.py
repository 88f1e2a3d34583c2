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

from tests.support import paths
from tests.support.ngc_standin import ACE, API_KEY, INSTANCE_TYPES, NgcStandin, Standin

DAG_ID = "gpu_sweep_basecommand"


@pytest.fixture(scope="module")
def airflow_db() -> Path:
    """A migrated metadata DB (sqlite in this worker's AIRFLOW_HOME) and its DAG folder."""
    from airflow.configuration import conf
    from airflow.utils.db import initdb

    initdb()
    folder = Path(conf.get("core", "dags_folder"))
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(paths.DAGS_DIR / f"{DAG_ID}.py", folder / f"{DAG_ID}.py")
    return folder


@pytest.fixture()
def platform_dir(tmp_path: Path, platform_envs, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kind environment's platform files plus a basecommand.json enabling the backend."""
    env = platform_envs["kind"]
    shutil.copytree(env.directory, tmp_path / "platform")
    (tmp_path / "platform" / "basecommand.json").write_text(
        json.dumps(
            {
                "enabled": True,
                "connId": "ngc_basecommand",
                "defaultBackend": "kubernetes",
                "ace": ACE,
                "image": "mlops-org/trainer:1.0",
                "instanceTypes": INSTANCE_TYPES,
                "timeLimitSeconds": 600,
                "pollSeconds": 1,
            }
        )
    )
    monkeypatch.setenv("MLOPS_PLATFORM_DIR", str(tmp_path / "platform"))
    monkeypatch.setenv("MLOPS_POD_TEMPLATES_DIR", str(tmp_path / "platform" / "pod-templates"))
    return tmp_path / "platform"


def run(folder: Path, server: NgcStandin, monkeypatch: pytest.MonkeyPatch, **conf: Any) -> Any:
    from airflow.models.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW_CONN_NGC_BASECOMMAND", json.dumps(server.connection()))
    bag = DagBag(str(folder / f"{DAG_ID}.py"), include_examples=False, safe_mode=False)
    assert bag.import_errors == {}
    return bag.dags[DAG_ID].test(run_conf=conf)


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
        dr = run(airflow_db, server, monkeypatch, command=["python", "train.py", "--epochs", "1"])
        tokens = list(server.state.tokens)
        jobs = list(server.state.jobs.values())
    assert dr.state == "success"
    assert sorted(j.body["aceInstance"] for j in jobs) == sorted(INSTANCE_TYPES.values())
    assert all(j.body["command"] == "python train.py --epochs 1" for j in jobs)
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
        dr = run(airflow_db, server, monkeypatch)
    assert dr.state == "failed"
    out = capfd.readouterr()
    assert "Base Command job 4000001 FAILED: Container exited with a non-zero status: exit code 3" in out.out + out.err


def test_bad_command_conf_is_refused_naming_the_key(
    airflow_db: Path, platform_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.exceptions import ParamValidationError

    with NgcStandin(Standin()) as server, pytest.raises(ParamValidationError, match="command"):
        run(airflow_db, server, monkeypatch, command="python train.py")
    assert server.state.requests == []
