"""run_job with a bad conf: HTTP 400 from the API and no pod created."""

from __future__ import annotations

import time

import pytest

from tests.kind import support

BAD_CONFS = support.RUN_JOB_BAD_CONFS


@pytest.mark.parametrize("conf", BAD_CONFS.values(), ids=BAD_CONFS.keys())
def test_bad_conf_is_rejected_before_any_pod(k8s: support.Kube, airflow: support.Airflow, conf: dict) -> None:
    airflow.unpause("run_job")
    runs_before = airflow.get("/dags/run_job/dagRuns").json()["total_entries"]
    pods_before = {p["metadata"]["name"] for p in k8s.pods(selector={"dag_id": "run_job"})}
    r = airflow.trigger("run_job", conf)
    assert r.status_code == 400, f"expected HTTP 400 for {conf}, got {r.status_code}: {r.text[:300]}"
    support.log(f"run_job {conf}: HTTP 400 {r.text[:200]}")
    time.sleep(10)  # give a wrongly created run time to start a pod
    assert airflow.get("/dags/run_job/dagRuns").json()["total_entries"] == runs_before
    pods_after = {p["metadata"]["name"] for p in k8s.pods(selector={"dag_id": "run_job"})}
    assert pods_after <= pods_before, f"pods created: {pods_after - pods_before}"
