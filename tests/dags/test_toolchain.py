"""The locked Python set works together: DagBag import, db migrate on sqlite, the pod builder.

Airflow's constraint files are not reachable offline, so requirements/test.lock was resolved
by pip; these tests are the proof that the set is coherent (and fail when it is not).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.support.airflow_pods import build_pod

DEMO_DAG = """
from __future__ import annotations
import pendulum
from airflow.sdk import DAG, Param
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

with DAG("toolchain_demo", schedule=None, start_date=pendulum.datetime(2026, 1, 1),
         params={"profile": Param("cpu", enum=["cpu", "gpu-1"])}, tags=["toolchain"]):
    KubernetesPodOperator(
        task_id="echo", name="echo", image="busybox:1.36", cmds=["echo"],
        arguments=["{{ params.profile }}"], namespace="jobs",
        pod_template_file="TEMPLATE_DIR/{{ params.profile }}.yaml",
    )
"""

POD_TEMPLATE = """\
apiVersion: v1
kind: Pod
metadata: {name: template}
spec:
  imagePullSecrets: [{name: nexus}]
  containers:
    - name: base
      image: placeholder
      securityContext: {runAsNonRoot: true, allowPrivilegeEscalation: false}
"""


def test_pinned_versions() -> None:
    assert metadata.version("apache-airflow") == "3.1.8"
    assert metadata.version("apache-airflow-providers-cncf-kubernetes") == "10.25.0"


@pytest.fixture()
def demo_dag(tmp_path: Path):
    from airflow.models.dagbag import DagBag

    for profile in ("cpu", "gpu-1"):
        (tmp_path / f"{profile}.yaml").write_text(POD_TEMPLATE)
    dag_file = tmp_path / "demo.py"
    dag_file.write_text(DEMO_DAG.replace("TEMPLATE_DIR", str(tmp_path)))
    bag = DagBag(dag_folder=str(dag_file), include_examples=False)
    assert bag.import_errors == {}
    return bag.dags["toolchain_demo"]


def test_dagbag_and_pod_builder(demo_dag) -> None:
    pod = build_pod(demo_dag, demo_dag.get_task("echo"), conf={"profile": "gpu-1"})
    (container,) = pod["spec"]["containers"]
    assert container["name"] == "base"
    assert container["args"] == ["gpu-1"]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "nexus"}]  # from the pod template
    assert pod["metadata"]["namespace"] == "jobs"


def test_bad_conf_is_rejected_before_any_pod(demo_dag) -> None:
    from airflow.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="profile"):
        build_pod(demo_dag, demo_dag.get_task("echo"), conf={"profile": "$(reboot)"})


def test_db_migrate_on_sqlite(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    airflow = Path(sys.executable).parent / "airflow"
    proc = subprocess.run(
        [str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "airflow.db").stat().st_size > 0
