"""Task retries: a deleted running task pod, and a container that fails for real (non-zero exit),
are retried; the run succeeds and the failed try's log reaches Airflow."""

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


# Fails on its first try (exit code 3 of the real trainer image), succeeds on the second: the
# marker lives in the run's workspace (/workspace, the same sub-path for every try of the run).
FAIL_ONCE = (
    "import os, sys\n"
    "marker = '/workspace/failed-once'\n"
    "if not os.path.exists(marker):\n"
    "    open(marker, 'w').write('1')\n"
    "    print('first try: failing on purpose with exit code 3', flush=True)\n"
    "    sys.exit(3)\n"
    "print('second try: the marker of the first is there, succeeding', flush=True)\n"
)
FAIL_ONCE_CONF = {**CONF, "command": ["python", "-c", FAIL_ONCE]}


def test_failing_task_is_retried_and_its_log_reaches_airflow(k8s: support.Kube, airflow: support.Airflow) -> None:
    """A task whose container exits non-zero for real: its try fails, the log of that try (the
    container's output) is served by the Airflow API, and the retry succeeds."""
    airflow.unpause("run_job")
    r = airflow.trigger("run_job", FAIL_ONCE_CONF)
    assert r.status_code == 200, f"trigger run_job: HTTP {r.status_code} {r.text[:500]}"
    run_id = r.json()["dag_run_id"]
    task_id = "job_cpu"
    state = airflow.wait_run("run_job", run_id, timeout=900)
    assert state == "success", airflow.failure_report("run_job", run_id) + "\n" + k8s.diagnostics()
    (ti,) = [t for t in airflow.task_instances("run_job", run_id) if t["task_id"] == task_id]
    assert ti["state"] == "success" and ti["try_number"] == 2, ti
    logs = {}
    for attempt in (1, 2):
        resp = airflow.get(
            f"/dags/run_job/dagRuns/{run_id}/taskInstances/{task_id}/logs/{attempt}",
            params={"full_content": "true"},
            headers={"Accept": "application/json"},
        )
        assert resp.status_code == 200, f"log of try {attempt}: HTTP {resp.status_code} {resp.text[:300]}"
        # Airflow 3: {"content": [{"event": "<line>", ...} | "<line>", ...], "continuation_token": ...}
        content = resp.json().get("content") or []
        logs[attempt] = "\n".join(c.get("event", "") if isinstance(c, dict) else str(c) for c in content)
    assert "first try: failing on purpose with exit code 3" in logs[1], logs[1][-3000:]
    assert "second try: the marker of the first is there" in logs[2], logs[2][-3000:]
    support.log("run_job: try 1 failed for real (exit 3), its log served by the API; try 2 succeeded")
