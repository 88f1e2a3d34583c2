"""The Airflow REST calls of tests/kind, against a real Airflow 3.1.8 API server started here.

tests/kind talks to the platform's API server with tests/kind/support.py: POST /auth/token,
PATCH /api/v2/dags/<id> (unpause), POST /api/v2/dags/<id>/dagRuns (trigger; 400 for a conf
that fails the DAG's params), GET runs and task instances. Here the same client runs against
`airflow api-server` (sqlite, simple auth manager: same /auth/token contract as the FAB auth
manager the official chart configures) serving this repository's DAGs, serialized with the
platform.json and pod templates rendered from values/kind.yaml. So the confs the kind tests
send are checked against the real DAG params, and the bad ones are proven to be rejected with
HTTP 400 before any run exists. No scheduler runs: accepted runs stay queued.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kind import support
from tests.support import paths
from tests.support.net import free_port
from tests.support.platform_env import render_environment
from tests.support.processes import running

pytestmark = pytest.mark.processes
AIRFLOW = Path(sys.executable).parent / "airflow"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.Airflow]:
    if not AIRFLOW.exists():
        pytest.skip(f"no airflow CLI beside {sys.executable}")
    tmp = tmp_path_factory.mktemp("airflow-api")
    platform = render_environment("kind", tmp / "platform")
    home = tmp / "home"
    home.mkdir()
    (home / "passwords.json").write_text(json.dumps({"admin": "kind-test-password"}))
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(paths.DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "MLOPS_PLATFORM_DIR": str(platform.directory),
        "MLOPS_POD_TEMPLATES_DIR": str(platform.templates_dir),
    }
    for step in (["db", "migrate"], ["dags", "reserialize"]):
        proc = subprocess.run([str(AIRFLOW), *step], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (
            f"airflow {' '.join(step)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    # The API server forks workers: running() stops its whole process group.
    cmd = [str(AIRFLOW), "api-server", "--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with running(cmd, tmp / "api-server.log", env, f"{base}/api/v2/monitor/health", timeout=120):
        yield support.Airflow(base, "admin", "kind-test-password")


def test_wrong_password_gets_no_token(api: support.Airflow) -> None:
    with pytest.raises(AssertionError, match="POST /auth/token: HTTP 401"):
        support.Airflow(api.base, "admin", "wrong")


def test_the_kind_tests_dags_are_listed(api: support.Airflow) -> None:
    for dag_id in ("ml_training", "ml_serving", "run_job"):
        dag = api.wait_dag(dag_id, timeout=30)
        assert dag["dag_id"] == dag_id


@pytest.mark.parametrize("conf", support.RUN_JOB_BAD_CONFS.values(), ids=support.RUN_JOB_BAD_CONFS.keys())
def test_bad_run_job_confs_get_400_and_no_run(api: support.Airflow, conf: dict) -> None:
    api.unpause("run_job")
    before = api.get("/dags/run_job/dagRuns").json()["total_entries"]
    r = api.trigger("run_job", conf)
    assert r.status_code == 400, f"{conf}: HTTP {r.status_code} {r.text[:300]}"
    assert "Invalid input for param" in r.text
    assert api.get("/dags/run_job/dagRuns").json()["total_entries"] == before


@pytest.mark.parametrize(
    ("dag_id", "conf"),
    [
        ("ml_training", {"profile": "gpu-1", "model_name": "iris"}),
        ("ml_serving", {"model_name": "iris"}),
        ("run_job", support.RUN_JOB_RETRY_CONF),
    ],
    ids=["ml_training-gpu-1", "ml_serving", "run_job-retry"],
)
def test_the_kind_tests_good_confs_are_accepted(api: support.Airflow, dag_id: str, conf: dict) -> None:
    api.unpause(dag_id)
    r = api.trigger(dag_id, conf)
    assert r.status_code == 200, f"{dag_id} {conf}: HTTP {r.status_code} {r.text[:500]}"
    run_id = r.json()["dag_run_id"]
    assert api.run(dag_id, run_id)["conf"] == conf
    task_ids = {ti["task_id"] for ti in api.task_instances(dag_id, run_id)}
    # The task ids the kind tests look for exist in these DAGs.
    expected = {"ml_training": {"train_gpu_1", "prepare"}, "ml_serving": {"deploy"}, "run_job": {"job_cpu"}}
    assert expected[dag_id] <= task_ids, task_ids
    assert api.failure_report(dag_id, run_id).startswith(f"{dag_id} {run_id}:")
