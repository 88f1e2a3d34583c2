"""Delete a running task pod: the task is retried and the run still succeeds."""

from __future__ import annotations

import subprocess
from typing import Any

from tests.kind import support
from tests.support import pipeline_checks as checks

CONF = support.RUN_JOB_RETRY_CONF


def test_deleted_task_pod_is_retried(k8s: support.Kube, airflow: support.Airflow) -> None:
    airflow.unpause("run_job")
    r = airflow.trigger("run_job", CONF)
    assert r.status_code == 200, f"trigger run_job: HTTP {r.status_code} {r.text[:500]}"
    run_id = r.json()["dag_run_id"]
    task_id = "job_cpu"

    def running_pod() -> Any:
        for pod in k8s.pods(selector={"dag_id": "run_job", "task_id": task_id}):
            if (
                pod["status"].get("phase") == "Running"
                and pod["metadata"].get("labels", {}).get("run_id")
                and not pod["metadata"].get("deletionTimestamp")
            ):
                return pod
        return None

    pod = support.wait_for(f"a running pod of run_job/{task_id}", running_pod, timeout=600)
    name = pod["metadata"]["name"]
    support.log(f"deleting running task pod {name}")
    subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            support.kubeconfig(),
            "-n",
            support.NAMESPACE,
            "delete",
            "pod",
            name,
            "--wait=false",
        ],
        check=True,
        capture_output=True,
    )
    watcher = support.PodWatcher(k8s, "run_job")
    watcher.seen[name] = pod
    state = airflow.wait_run("run_job", run_id, timeout=900, on_poll=watcher.poll)
    assert state == "success", airflow.failure_report("run_job", run_id) + "\n" + k8s.diagnostics()
    (ti,) = [t for t in airflow.task_instances("run_job", run_id) if t["task_id"] == task_id]
    assert ti["state"] == "success"
    # the same check as tests/cluster/test_pipelines.py (tests/support/pipeline_checks.py)
    pods = [p for p in watcher.by_task(task_id) if p["metadata"]["labels"].get("run_id") == pod["metadata"]["labels"]["run_id"]]
    checks.assert_retried(pods, ti["try_number"])
