"""Base Command client, trigger and input validation against a STAND-IN NGC server.

NVIDIA's service cannot be reached here: every test talks to tests/support/ngc_standin.py, a
local HTTP server on 127.0.0.1 standing in for NGC's token service and the Base Command job API
(token exchange, dataset lookup, job create/status/kill/log), with scripted job lives and faults.
The trigger is run by Airflow's own triggerer machinery (TriggerRunner: built from its serialized
form, run, cancelled, cleaned up) or through its public run(); the operator's deferral itself is
run by Airflow in test_basecommand_dag.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from mlops_platform.basecommand.client import (
    TERMINAL_STATES,
    BaseCommandApiError,
    BaseCommandClient,
    DatasetAmbiguous,
    DatasetNotFound,
    NgcCredentials,
    RetryPolicy,
    job_status,
)
from mlops_platform.basecommand.operator import BaseCommandJobTrigger
from mlops_platform.basecommand.spec import BaseCommandConfigError, job_spec, parse_result

from tests.support.ngc_standin import ACE, API_KEY, INSTANCE_TYPES, NgcStandin, Standin

FAST = RetryPolicy(attempts=3, backoff_seconds=0.01, timeout_seconds=0.5)


@pytest.fixture()
def standin(monkeypatch: pytest.MonkeyPatch):
    """The stand-in NGC/Base Command server and AIRFLOW_CONN_NGC_BASECOMMAND pointing at it."""
    with NgcStandin(Standin()) as server:
        monkeypatch.setenv("AIRFLOW_CONN_NGC_BASECOMMAND", json.dumps(server.connection()))
        yield server


def creds(server: NgcStandin) -> NgcCredentials:
    c = server.connection()
    return NgcCredentials(api_key=c["password"], **c["extra"])


def spec(**over: Any):
    kw: dict[str, Any] = {
        "name": "unit-job",
        "image": "mlops-org/trainer:1.0",
        "command": ["python", "train.py", "--epochs", "3"],
        "instance_type": INSTANCE_TYPES["gpu-2"],
        "allowed_instance_types": list(INSTANCE_TYPES.values()),
        "ace": ACE,
        "time_limit_seconds": 600,
        "datasets": [{"id": 101, "mount": "/data/iris"}],
    }
    kw.update(over)
    return job_spec(**kw)


def trigger(job_id: str, deadline_in: float = 60.0, **kw: Any) -> BaseCommandJobTrigger:
    return BaseCommandJobTrigger(
        conn_id="ngc_basecommand",
        job_id=job_id,
        deadline=time.time() + deadline_in,
        poll_interval=0.02,
        retry_attempts=3,
        retry_backoff=0.01,
        request_timeout=0.5,
        **kw,
    )


async def submit(server: NgcStandin, **over: Any) -> str:
    async with BaseCommandClient(creds(server), FAST) as client:
        return str((await client.create_job(spec(**over)))["id"])


async def first_event(trig: BaseCommandJobTrigger) -> dict[str, Any]:
    gen = trig.run()
    try:
        event = await anext(gen)
    finally:
        await gen.aclose()
    return event.payload


# --- the happy path and the platform's final states -----------------------------------------------


def test_success_with_dataset_lookup_and_org_team_scoped_token(standin: NgcStandin) -> None:
    async def go() -> dict[str, Any]:
        async with BaseCommandClient(creds(standin), FAST) as client:
            assert (await client.dataset("101"))["name"] == "iris-train"
        job_id = await submit(standin)
        return await first_event(trigger(job_id))

    event = asyncio.run(go())
    assert event["status"] == "success" and event["job_status"] == "FINISHED_SUCCESS"
    (job,) = standin.state.jobs.values()
    body = job.body
    assert body["aceInstance"] == "dgxa100.80g.2.norm" and body["aceName"] == ACE
    assert body["command"] == "python train.py --epochs 3"  # one argument per list item, quoted
    assert body["datasetMounts"] == [{"id": 101, "containerMountPoint": "/data/iris"}]
    assert body["runPolicy"] == {"totalRuntimeSeconds": 600, "preemptClass": "RUNONCE"}
    token_paths = [p for _, p, k in standin.state.requests if k == "token"]
    assert token_paths and all("scope=group%2Fngc%3Amlops-org%2Fml-team" in p for p in token_paths)


def test_command_arguments_keep_their_boundaries() -> None:
    s = spec(command=["echo", "a b", "$(reboot)", "x;y"])
    assert s.body()["command"] == "echo 'a b' '$(reboot)' 'x;y'"


def test_job_failure_carries_the_platform_status_and_message(standin: NgcStandin) -> None:
    standin.state.plan = ("QUEUED", "RUNNING", "FAILED")

    event = asyncio.run(first_event(trigger(asyncio.run(submit(standin)))))
    assert event["status"] == "failed"
    assert event["job_status"] == "FAILED"
    assert "exit code 3" in event["message"]


def test_job_killed_on_the_platform(standin: NgcStandin) -> None:
    standin.state.plan = ("QUEUED", "RUNNING", "KILLED_BY_USER")
    event = asyncio.run(first_event(trigger(asyncio.run(submit(standin)))))
    assert event["status"] == "killed" and event["job_status"] == "KILLED_BY_USER"


def test_deadline_kills_the_job_and_fires_timeout(standin: NgcStandin) -> None:
    standin.state.plan = ("QUEUED",) * 1000  # never starts
    job_id = asyncio.run(submit(standin))
    event = asyncio.run(first_event(trigger(job_id, deadline_in=0.2)))
    assert event["status"] == "timeout" and "killed" in event["message"]
    assert standin.state.killed() == [int(job_id)]
    assert standin.state.paths("kill") == [f"/v2/org/mlops-org/jobs/{job_id}?reason=Airflow%3A+deadline+passed"]


# --- tokens ------------------------------------------------------------------------------------------


def test_token_refreshed_before_expiry_during_a_long_job(standin: NgcStandin) -> None:
    standin.state.token_ttl = 0.5  # refreshed at 80% of its life
    standin.state.plan = ("RUNNING",) * 40 + ("FINISHED_SUCCESS",)
    job_id = asyncio.run(submit(standin))
    event = asyncio.run(first_event(trigger(job_id)))
    assert event["status"] == "success"
    assert standin.state.kinds().count("token") >= 3


def test_revoked_token_is_exchanged_again_on_401(standin: NgcStandin) -> None:
    standin.state.plan = ("RUNNING",) * 5 + ("FINISHED_SUCCESS",)
    job_id = asyncio.run(submit(standin))

    async def go() -> dict[str, Any]:
        async with BaseCommandClient(creds(standin), FAST) as client:
            await client.job(job_id)
            standin.state.revoke_tokens()
            before = client.token_exchanges
            await client.job(job_id)
            assert client.token_exchanges == before + 1
        return await first_event(trigger(job_id))

    assert asyncio.run(go())["status"] == "success"


def test_wrong_api_key_fails_clearly_without_the_key(standin: NgcStandin) -> None:
    bad = NgcCredentials(**{**creds(standin).__dict__, "api_key": "nvapi-wrong-key"})

    async def go() -> None:
        async with BaseCommandClient(bad, FAST) as client:
            await client.job("1")

    with pytest.raises(BaseCommandApiError, match="API key was refused") as err:
        asyncio.run(go())
    assert "nvapi-wrong-key" not in str(err.value)


# --- API errors and timeouts ---------------------------------------------------------------------------


def test_transient_api_errors_are_retried(standin: NgcStandin) -> None:
    standin.state.faults = {"create": [503, 502], "status": [500, 429]}
    event = asyncio.run(first_event(trigger(asyncio.run(submit(standin)))))
    assert event["status"] == "success"
    assert standin.state.kinds().count("create") == 3


def test_persistent_api_errors_fail_clearly_after_the_retries(standin: NgcStandin) -> None:
    job_id = asyncio.run(submit(standin))
    standin.state.faults = {"status": [503] * 10}
    event = asyncio.run(first_event(trigger(job_id)))
    assert event["status"] == "error"
    assert event["message"] == f"job {job_id} status: HTTP 503 [SERVICE_UNAVAILABLE] stand-in: injected error (3 attempts)"


def test_request_timeouts_are_retried_then_fail_clearly(standin: NgcStandin) -> None:
    standin.state.delays = {"create": 1.0}
    with pytest.raises(BaseCommandApiError, match=r"job create unit-job: timed out after 0.5 s \(3 attempts\)"):
        asyncio.run(submit(standin))


# --- bad input -----------------------------------------------------------------------------------------


def test_unknown_instance_type_is_refused_before_any_request() -> None:
    with pytest.raises(BaseCommandConfigError, match=r"instance_type 'dgxh100.80g.3.norm' is not declared"):
        spec(instance_type="dgxh100.80g.3.norm")


def test_unknown_instance_type_refused_by_the_platform(standin: NgcStandin) -> None:
    with pytest.raises(BaseCommandApiError, match=r"HTTP 400 \[INVALID_REQUEST\] Invalid instance type"):
        asyncio.run(submit(standin, instance_type="dgxh100.80g.3.norm", allowed_instance_types=None))


def test_dataset_that_does_not_exist(standin: NgcStandin) -> None:
    async def go() -> None:
        async with BaseCommandClient(creds(standin), FAST) as client:
            await client.dataset("999")

    with pytest.raises(DatasetNotFound, match=r"dataset 999: not found \[NOT_FOUND\] Dataset 999 not found"):
        asyncio.run(go())


async def _resolve(server: NgcStandin, names: list[str], ace: str | None = ACE) -> dict[str, str]:
    async with BaseCommandClient(creds(server), FAST) as client:
        return await client.resolve_datasets(names, ace=ace)


def test_dataset_names_resolved_to_ids_through_every_page(standin: NgcStandin) -> None:
    """The stand-in answers 2 datasets per page: 'imagenet-mini' is on the second page. The
    'iris-train' in another ACE is not listed (ace-name filter)."""
    ids = asyncio.run(_resolve(standin, ["iris-train", "imagenet-mini", "iris-train"]))
    assert ids == {"iris-train": "101", "imagenet-mini": "103"}
    pages = standin.state.paths("datasets")
    assert len(pages) == 3  # 5 datasets in the ACE, 2 per page
    assert all(p.startswith("/v2/org/mlops-org/team/ml-team/datasets?page-size=500&ace-name=nv-standin-ace-1") for p in pages)
    assert [p.rsplit("page-number=", 1)[-1] for p in pages[1:]] == ["1", "2"]


def test_dataset_name_that_does_not_exist_fails_clearly(standin: NgcStandin) -> None:
    with pytest.raises(
        DatasetNotFound,
        match=r"dataset 'no-such-data': no dataset of that name in org mlops-org, team ml-team, ACE nv-standin-ace-1 \(5 listed\)",
    ):
        asyncio.run(_resolve(standin, ["iris-train", "no-such-data"]))


def test_dataset_name_of_two_datasets_fails_naming_their_ids(standin: NgcStandin) -> None:
    with pytest.raises(DatasetAmbiguous, match=r"dataset 'shared-name': 2 datasets .* \(ids \['104', '105'\]\); give the id"):
        asyncio.run(_resolve(standin, ["shared-name"]))


def test_named_datasets_mount_by_id_after_resolution(standin: NgcStandin) -> None:
    s = spec(datasets=[{"name": "iris-train", "mount": "/data/train"}, {"id": 102, "mount": "/data/test"}])
    with pytest.raises(BaseCommandConfigError, match=r"datasets \['iris-train'\] are names: resolve them first"):
        s.body()
    body = s.with_dataset_ids({"iris-train": "101"}).body()
    assert body["datasetMounts"] == [
        {"id": 102, "containerMountPoint": "/data/test"},
        {"id": 101, "containerMountPoint": "/data/train"},
    ]


# --- the job log -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("redirect", [False, True])
def test_job_log_is_fetched_from_the_result_set(standin: NgcStandin, redirect: bool) -> None:
    standin.state.log_redirect = redirect
    job_id = asyncio.run(submit(standin))
    assert asyncio.run(first_event(trigger(job_id)))["status"] == "success"

    async def go() -> str:
        async with BaseCommandClient(creds(standin), FAST) as client:
            return await client.job_log(job_id)

    text = asyncio.run(go())
    assert 'MLOPS_RESULT {"gpus": 2' in text
    (path,) = standin.state.paths("log")
    assert path == f"/v2/org/mlops-org/resultsets/{job_id}/replicas/0/file/joblog.log?lines=10000&log-order=LAST&offset="
    assert standin.state.kinds().count("download") == (1 if redirect else 0)


def test_job_log_before_the_job_ran_is_a_clear_error(standin: NgcStandin) -> None:
    job_id = asyncio.run(submit(standin))

    async def go() -> str:
        async with BaseCommandClient(creds(standin), FAST) as client:
            return await client.job_log(job_id)

    with pytest.raises(BaseCommandApiError, match=rf"job {job_id} log: HTTP 404 \[NOT_FOUND\] no result set"):
        asyncio.run(go())


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"command": "python train.py"}, "command must be a list of strings"),
        ({"command": []}, "command must be a non-empty list"),
        ({"command": ["python", 3]}, "command must be a non-empty list of non-empty strings"),
        ({"ace": "Bad ACE!"}, "ace 'Bad ACE!' is not a valid ACE name"),
        ({"instance_type": "DGX A100"}, "instance_type 'DGX A100' is not a valid instance type"),
        ({"time_limit_seconds": 10}, "time_limit_seconds 10 is outside 60..2592000"),
        ({"time_limit_seconds": True}, "time_limit_seconds must be an integer"),
        ({"time_limit_seconds": "600"}, "time_limit_seconds must be an integer"),
        ({"image": "mlops-org/trainer:latest"}, "image 'mlops-org/trainer:latest' is not an NGC image"),
        ({"image": "evil.example.com:5000/x/y:1"}, "is not an NGC image"),
        ({"datasets": [{"id": 101, "mount": "data"}]}, r"datasets\[0\].mount 'data': must match"),
        ({"datasets": [{"id": 101, "mount": "/results"}]}, "mount points must be distinct"),
        ({"env": {"lower": "x"}}, "env name 'lower' must match"),
    ],
)
def test_bad_job_input_names_the_key(over: dict[str, Any], message: str) -> None:
    with pytest.raises(BaseCommandConfigError, match=message):
        spec(**over)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"org": "bad org"}, "extra.org 'bad org' is not valid"),
        ({"team": "team/x"}, "extra.team 'team/x' is not valid"),
        ({"ace": "ACE 1"}, "extra.ace 'ACE 1' is not valid"),
        ({"api_url": "ftp://x"}, "extra.api_url must be an http"),
    ],
)
def test_bad_connection_names_the_key(extra: dict[str, str], message: str) -> None:
    base = {"org": "mlops-org", "team": "ml-team", "ace": ACE}
    with pytest.raises(BaseCommandConfigError, match=message):
        NgcCredentials(api_key=API_KEY, **{**base, **extra})


def test_credentials_repr_hides_the_key() -> None:
    assert API_KEY not in repr(NgcCredentials(api_key=API_KEY, org="mlops-org"))


# --- cancellation: Airflow's triggerer runs, cancels and cleans up the trigger ---------------------------


class _ApiServerStandIn:
    """SUPERVISOR_COMMS of a triggerer process, answering GetTaskStates with a given state.

    In a triggerer, RuntimeTaskInstance.get_task_states asks the supervisor, which asks the
    API server; this answers as the API server would after the task left (or kept) deferral.
    """

    def __init__(self, state: str | None) -> None:
        self.state = state
        self.asked: list[Any] = []

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import GetTaskStates, TaskStatesResult

        if not isinstance(msg, GetTaskStates):
            return None  # e.g. MaskSecret
        self.asked.append(msg)
        states = {} if self.state is None else {msg.run_ids[0]: {msg.task_ids[0]: self.state}}
        return TaskStatesResult(task_states=states)


async def _run_in_triggerer(trig: BaseCommandJobTrigger, server: NgcStandin, polls: int) -> None:
    """Airflow's TriggerRunner: create the trigger from its serialized form (classpath + encrypted
    kwargs, as stored in the triggers table), let it poll, then cancel it the way the triggerer
    does when its task instance no longer points at it; run_trigger() calls cleanup()."""
    import uuid

    from airflow.executors import workloads
    from airflow.jobs.triggerer_job_runner import TriggerRunner
    from airflow.models.trigger import Trigger

    classpath, kwargs = trig.serialize()
    row = Trigger(classpath=classpath, kwargs=kwargs)
    ti = workloads.TaskInstance(
        id=uuid.uuid4(), dag_version_id=uuid.uuid4(), task_id="job", dag_id="bc_dag", run_id="manual__1",
        try_number=1, map_index=-1, pool_slots=1, queue="default", priority_weight=1,
    )
    runner = TriggerRunner()
    runner.to_create.append(
        workloads.RunTrigger(id=1, ti=ti, classpath=classpath, encrypted_kwargs=row.encrypted_kwargs)
    )
    await runner.create_triggers()
    task = runner.triggers[1]["task"]
    while server.state.jobs[int(trig.job_id)].polls < polls:
        await asyncio.sleep(0.01)
    runner.to_cancel.append(1)
    await runner.cancel_triggers()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("task_state", "killed"),
    [
        ("failed", True),  # marked failed (or killed) while deferred
        ("scheduled", True),  # defer timeout: the scheduler sets scheduled + next_method __fail__
        ("success", True),  # marked success while deferred
        ("deferred", False),  # triggerer restart or rebalance: the task still waits for the job
        (None, False),  # state unknown: keep the job (its own time limit bounds it)
    ],
)
def test_cancelled_trigger_kills_the_job_only_when_the_task_left_deferral(
    standin: NgcStandin, monkeypatch: pytest.MonkeyPatch, task_state: str | None, killed: bool
) -> None:
    from airflow.sdk.execution_time import task_runner

    standin.state.plan = ("RUNNING",) * 1000
    job_id = asyncio.run(submit(standin))
    api = _ApiServerStandIn(task_state)
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", api, raising=False)
    asyncio.run(_run_in_triggerer(trigger(job_id), standin, polls=2))
    assert [m.task_ids for m in api.asked] == [["job"]]
    assert standin.state.killed() == ([int(job_id)] if killed else [])
    assert standin.state.kinds().count("kill") == (1 if killed else 0)
    if killed:
        assert standin.state.paths("kill") == [
            f"/v2/org/mlops-org/jobs/{job_id}?reason=Airflow%3A+task+no+longer+deferred"
        ]


def test_trigger_that_fired_does_not_kill_on_cleanup(standin: NgcStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time import task_runner

    api = _ApiServerStandIn("failed")
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", api, raising=False)
    trig = trigger(asyncio.run(submit(standin)))

    async def go() -> None:
        await first_event(trig)
        await trig.cleanup()

    asyncio.run(go())
    assert api.asked == [] and standin.state.killed() == []


def test_trigger_kwargs_hold_no_credentials(standin: NgcStandin) -> None:
    _, kwargs = trigger("42").serialize()
    assert API_KEY not in json.dumps(kwargs)
    assert set(kwargs) >= {"conn_id", "job_id", "deadline"}


def test_result_line_parsing() -> None:
    assert parse_result('x\nMLOPS_RESULT {"a": 1}\nMLOPS_RESULT {"a": 2}\nMLOPS_RESULT nope\n') == {"a": 2}
    assert parse_result("nothing") is None


def test_job_status_without_a_status_is_not_terminal() -> None:
    status, _ = job_status({"id": 1})
    assert status == "NO_STATUS" and status not in TERMINAL_STATES
    assert job_status({"jobStatus": {"status": "FAILED", "statusDetails": "OOM", "exitCode": 137}}) == (
        "FAILED",
        "OOM; exit code 137",
    )
    assert "UNKNOWN" in TERMINAL_STATES and "CANCELED" in TERMINAL_STATES and "PREEMPTED" not in TERMINAL_STATES
