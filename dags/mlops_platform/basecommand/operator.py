"""BaseCommandJobOperator: one NVIDIA Base Command Platform job, deferrable.

execute (worker)         token exchange, dataset lookup (names -> ids; a missing or ambiguous
                         name fails the task without retry), job create; pushes XCom `job_id`;
                         defers
BaseCommandJobTrigger    polls the job status in the triggerer (no worker slot), refreshes the
(triggerer)              token, logs status changes; at a final state fires an event; past its
                         deadline (time limit + queue allowance, or the task's execution_timeout
                         if sooner) kills the job and fires `timeout`
execute_complete         fetches the job log into the task log (success, failure, kill and
(worker)                 timeout alike), returns {job_id, status, result} (`result`: the job's
                         last `MLOPS_RESULT {json}` log line) or fails with the platform's status
                         and message
on_kill / cleanup        kill the job when the task is killed or times out (cleanup only when the
                         task is no longer deferred: a triggerer restart must not kill the job)

Cancellation in Airflow 3.1 (read from its source): a deferred task that reaches its defer
timeout is set to `scheduled` with next_method `__fail__` by the scheduler
(check_trigger_timeouts); a deferred task marked failed/success or cleared leaves `deferred`
too; either way the triggerer cancels the trigger and calls its `cleanup()`, which asks the
task's state and kills the job when it is no longer `deferred`. Airflow 3.1 does not call a
trigger's `on_kill`, and `execution_timeout` is not enforced while a task is deferred
(task_runner: "TODO: handle timeout in case of deferral"), hence the deadline above. The
worker's SIGTERM and execution_timeout handlers call the operator's `on_kill`.

Credentials: the Airflow connection `conn_id` (default `ngc_basecommand`; API key = password;
org, team, ace, api_url, auth_url in extra; org/team default to the operator's `org`/`team`, the
chart's basecommand.org/team), in production the env var
AIRFLOW_CONN_NGC_BASECOMMAND from the Kubernetes Secret named in the chart's values. The key is
read at run time only: it is not a template field, not in XCom, not in the trigger's kwargs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.exceptions import AirflowException, AirflowFailException
from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from ..templates import check_operator_fields
from .client import (
    DEFAULT_CONN_ID,
    KILLED_STATES,
    STATES_BEFORE_RUNNING,
    SUCCESS_STATES,
    TERMINAL_STATES,
    BaseCommandClient,
    DatasetAmbiguous,
    DatasetNotFound,
    NgcCredentials,
    RetryPolicy,
    job_status,
)
from .settings import BaseCommandSettings, job_settings
from .spec import (
    DEFAULT_RESULT_DIR,
    BaseCommandConfigError,
    BaseCommandError,
    job_name,
    job_spec,
    parse_result,
)

# Extra time a job may spend queued/starting before the trigger gives up on it.
DEFAULT_QUEUE_TIMEOUT = 3600


def _run(coro: Any) -> Any:
    """Run a coroutine from sync code, in a fresh thread if a loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 (re-raised below in the caller's thread)
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


class BaseCommandJobTrigger(BaseTrigger):
    """Polls one Base Command job until a final state (or the deadline, then kills it)."""

    def __init__(
        self,
        *,
        conn_id: str,
        job_id: str,
        deadline: float,
        org: str | None = None,
        team: str | None = None,
        poll_interval: float = 30.0,
        retry_attempts: int = 5,
        retry_backoff: float = 1.0,
        request_timeout: float = 30.0,
        cancel_on_kill: bool = True,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.org = org
        self.team = team
        self.job_id = str(job_id)
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.retry_attempts = int(retry_attempts)
        self.retry_backoff = float(retry_backoff)
        self.request_timeout = float(request_timeout)
        self.cancel_on_kill = cancel_on_kill
        self._fired = False

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "org": self.org,
                "team": self.team,
                "job_id": self.job_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "retry_attempts": self.retry_attempts,
                "retry_backoff": self.retry_backoff,
                "request_timeout": self.request_timeout,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    def _retry(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.retry_attempts, backoff_seconds=self.retry_backoff, timeout_seconds=self.request_timeout
        )

    async def _creds(self) -> NgcCredentials:
        from asgiref.sync import sync_to_async

        return await sync_to_async(NgcCredentials.from_conn_id)(self.conn_id, {"org": self.org, "team": self.team})

    def _event(self, status: str, **payload: Any) -> TriggerEvent:
        self._fired = True
        return TriggerEvent({"status": status, "job_id": self.job_id, **payload})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            creds = await self._creds()
        except BaseCommandError as exc:
            yield self._event("error", job_status="", message=str(exc))
            return
        last = None
        async with BaseCommandClient(creds, self._retry()) as client:
            while True:
                try:
                    status, message = job_status(await client.job(self.job_id))
                except BaseCommandError as exc:
                    yield self._event("error", job_status=last or "", message=str(exc))
                    return
                if status != last:
                    self.log.info("Base Command job %s: %s %s", self.job_id, status, message)
                    last = status
                if status in TERMINAL_STATES:
                    kind = "success" if status in SUCCESS_STATES else "killed" if status in KILLED_STATES else "failed"
                    yield self._event(kind, job_status=status, message=message)
                    return
                if time.time() >= self.deadline:
                    self.log.warning("Base Command job %s: deadline passed in %s, killing it", self.job_id, status)
                    try:
                        await client.kill_job(self.job_id, reason="Airflow: deadline passed")
                        note = "killed"
                    except BaseCommandError as exc:
                        note = f"kill failed: {exc}"
                    yield self._event(
                        "timeout", job_status=status, message=f"deadline passed while {status}; {note}"
                    )
                    return
                await asyncio.sleep(min(self.poll_interval, max(0.0, self.deadline - time.time()) + 0.01))

    async def _kill(self, why: str) -> None:
        self.log.info("Base Command job %s: killing it (%s)", self.job_id, why)
        try:
            async with BaseCommandClient(await self._creds(), self._retry()) as client:
                await client.kill_job(self.job_id, reason=f"Airflow: {why}")
        except BaseCommandError as exc:
            self.log.error("Base Command job %s: kill failed: %s", self.job_id, exc)

    async def task_state(self) -> Any:
        """The task instance's state as the API server sees it (None when it cannot be asked)."""
        ti = self.task_instance
        if ti is None:
            return None
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        from asgiref.sync import sync_to_async

        states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
            dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index
        )
        key = f"{ti.task_id}_{ti.map_index}" if ti.map_index is not None and ti.map_index >= 0 else ti.task_id
        return states.get(ti.run_id, {}).get(key)

    async def safe_to_cancel(self) -> bool:
        """True when the task is no longer deferred (killed, timed out, marked failed/success).

        A deferred task means the trigger is only moving (triggerer restart or rebalance): then the
        job keeps running. When the state cannot be read, the job is kept too: its own time limit
        (runPolicy.totalRuntimeSeconds) bounds what it can cost.
        """
        try:
            state = await self.task_state()
        except Exception as exc:  # noqa: BLE001 (any failure to ask = keep the job)
            self.log.warning("Base Command job %s: task state unknown (%s); job kept", self.job_id, exc)
            return False
        return state is not None and str(state) != "deferred"

    async def cleanup(self) -> None:
        """Kill the job when the trigger is removed because the task was killed or timed out."""
        if self._fired or not self.cancel_on_kill:
            return
        if await self.safe_to_cancel():
            await self._kill("task no longer deferred")

    async def on_kill(self) -> None:
        """For Airflow versions that call a trigger's on_kill (3.1 does not: cleanup() does the work)."""
        if not self._fired and self.cancel_on_kill:
            await self._kill("task killed")


class BaseCommandJobOperator(BaseOperator):
    """Run one Base Command job and wait for it in the triggerer (see the module docstring).

    `profile` (templated) picks the instance type from `instance_types` (the chart's
    basecommand.instanceTypes, profile -> instance type); or give `instance_type` directly, which
    must still be one of the declared ones. `command` is a list of strings (templated; with
    render_template_as_native_obj a `{{ params.command }}` list stays a list).
    """

    template_fields: Sequence[str] = (
        "image",
        "command",
        "profile",
        "instance_type",
        "ace",
        "time_limit_seconds",
        "datasets",
        "workspaces",
        "env",
        "job_name",
    )
    ui_color = "#76b900"

    def __init__(
        self,
        *,
        image: str,
        command: Sequence[str] | str,
        instance_types: Mapping[str, str],
        profile: str | None = None,
        instance_type: str | None = None,
        ace: str | None = None,
        time_limit_seconds: int | str = 3600,
        datasets: Sequence[Mapping[str, Any]] | str | None = None,
        workspaces: Sequence[Mapping[str, Any]] | str | None = None,
        result_dir: str = DEFAULT_RESULT_DIR,
        env: Mapping[str, str] | str | None = None,
        job_name: str | None = None,
        conn_id: str = DEFAULT_CONN_ID,
        org: str | None = None,
        team: str | None = None,
        poll_interval: float = 30.0,
        queue_timeout_seconds: int = DEFAULT_QUEUE_TIMEOUT,
        retry_attempts: int = 5,
        retry_backoff: float = 1.0,
        request_timeout: float = 30.0,
        allow_template_names: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # No conn/var/dag_run/conf/macros in a job's fields unless opted in (mlops_platform.templates).
        fields = {"image": image, "command": command, "profile": profile, "instance_type": instance_type,
                  "ace": ace, "time_limit_seconds": time_limit_seconds, "datasets": datasets,
                  "workspaces": workspaces, "env": env, "job_name": job_name}  # fmt: skip
        check_operator_fields(self.task_id, fields, allow_template_names)
        if (profile is None) == (instance_type is None):
            raise BaseCommandConfigError(f"{self.task_id}: give exactly one of profile or instance_type")
        self.image = image
        self.command = command
        self.instance_types = dict(instance_types)
        self.profile = profile
        self.instance_type = instance_type
        self.ace = ace
        self.time_limit_seconds = time_limit_seconds
        self.datasets = datasets
        self.workspaces = workspaces
        self.result_dir = result_dir
        self.env = env
        self.job_name = job_name
        self.conn_id = conn_id
        # Defaults for what the connection's extra leaves out (the chart's basecommand.org/team).
        self.org = org
        self.team = team
        self.poll_interval = poll_interval
        self.queue_timeout_seconds = queue_timeout_seconds
        self.retry_attempts = retry_attempts
        self.retry_backoff = retry_backoff
        self.request_timeout = request_timeout
        self.job_id: str | None = None
        self._creds: NgcCredentials | None = None

    # -- helpers ---------------------------------------------------------------------------------

    def _retry(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.retry_attempts, backoff_seconds=self.retry_backoff, timeout_seconds=self.request_timeout
        )

    def _credentials(self) -> NgcCredentials:
        if self._creds is None:
            try:
                self._creds = NgcCredentials.from_conn_id(self.conn_id, {"org": self.org, "team": self.team})
            except BaseCommandConfigError as exc:
                raise AirflowFailException(f"connection {self.conn_id!r}: {exc}") from None
        return self._creds

    def _instance_type(self) -> str:
        if self.profile is not None:
            if self.profile not in self.instance_types:
                raise BaseCommandConfigError(
                    f"profile {self.profile!r} has no Base Command instance type in the chart's "
                    f"basecommand.instanceTypes (declared: {', '.join(self.instance_types) or 'none'})"
                )
            return self.instance_types[self.profile]
        return str(self.instance_type)

    def build_spec(self, context: Any, creds: NgcCredentials) -> Any:
        ti = context["ti"]
        name = self.job_name or job_name(ti.dag_id, ti.task_id, str(ti.map_index) if ti.map_index >= 0 else "", ti.run_id)
        ace = self.ace or creds.ace
        if not ace:
            raise BaseCommandConfigError("ace: not set on the task nor in the connection's extra.ace")
        time_limit = self.time_limit_seconds
        if isinstance(time_limit, str) and time_limit.strip().isdigit():
            time_limit = int(time_limit)
        return job_spec(
            name=name,
            image=self.image,
            command=self.command,
            instance_type=self._instance_type(),
            allowed_instance_types=list(self.instance_types.values()),
            ace=ace,
            time_limit_seconds=time_limit,
            datasets=self.datasets,
            workspaces=self.workspaces,
            result_dir=self.result_dir,
            env=self.env,
        )

    async def _submit(self, creds: NgcCredentials, spec: Any) -> str:
        """Look up the datasets (names -> ids through the API, ids checked), then create the job."""
        async with BaseCommandClient(creds, self._retry()) as client:
            ids = await client.resolve_datasets([n for n, _ in spec.dataset_names], ace=spec.ace)
            for name, mount in spec.dataset_names:
                self.log.info("dataset %r -> id %s, mounted at %s", name, ids[name], mount)
            for ident, mount in spec.datasets:
                found = await client.dataset(ident)
                self.log.info("dataset id %s (%s), mounted at %s", ident, found.get("name", "?"), mount)
            job = await client.create_job(spec.with_dataset_ids(ids))
        return str(job["id"])

    def _deadline(self, context: Any, time_limit: int) -> float:
        """When the trigger gives up and kills the job: the time limit plus the queue allowance,
        or the task's execution_timeout (counted from the task's start) if that comes first."""
        deadline = time.time() + time_limit + self.queue_timeout_seconds
        if self.execution_timeout:
            started = getattr(context["ti"], "start_date", None)
            start = started.timestamp() if started is not None else time.time()
            deadline = min(deadline, start + self.execution_timeout.total_seconds())
        return deadline

    # -- Airflow entry points ----------------------------------------------------------------------

    def execute(self, context: Any) -> Any:
        creds = self._credentials()
        try:
            spec = self.build_spec(context, creds)
        except BaseCommandConfigError as exc:
            raise AirflowFailException(f"{self.task_id}: {exc}") from None
        self.log.info(
            "Base Command job %s: %s on %s in ACE %s (org %s, team %s), time limit %s s",
            spec.name, spec.image, spec.instance_type, spec.ace, creds.org, creds.team or "-", spec.time_limit_seconds,
        )
        try:
            self.job_id = _run(self._submit(creds, spec))
        except (DatasetNotFound, DatasetAmbiguous) as exc:
            raise AirflowFailException(f"{self.task_id}: {exc}") from None  # a retry cannot help
        except BaseCommandError as exc:
            raise AirflowException(f"{self.task_id}: {exc}") from None
        self.log.info("Base Command job %s submitted as id %s", spec.name, self.job_id)
        context["ti"].xcom_push(key="job_id", value=self.job_id)
        deadline = self._deadline(context, spec.time_limit_seconds)
        self.defer(
            trigger=BaseCommandJobTrigger(
                conn_id=self.conn_id,
                org=self.org,
                team=self.team,
                job_id=self.job_id,
                deadline=deadline,
                poll_interval=self.poll_interval,
                retry_attempts=self.retry_attempts,
                retry_backoff=self.retry_backoff,
                request_timeout=self.request_timeout,
            ),
            method_name="execute_complete",
            # Backstop: the trigger ends itself at the deadline; past this the scheduler fails the
            # task (state `scheduled`, next_method `__fail__`) and the trigger's cleanup kills the job.
            timeout=timedelta(seconds=max(0.0, deadline - time.time()) + 600),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = event or {}
        self.job_id = str(event.get("job_id") or "")
        status, job_state, message = event.get("status"), event.get("job_status", ""), event.get("message", "")
        log_text = ""
        # The job log, whatever the outcome (none exists before the job ran).
        if self.job_id and job_state not in STATES_BEFORE_RUNNING:
            try:
                log_text = _run(self._fetch_log(self._credentials(), self.job_id))
            except BaseCommandError as exc:
                self.log.warning("Base Command job %s: log not available: %s", self.job_id, exc)
        if log_text:
            self.log.info("---- Base Command job %s log ----\n%s\n---- end of log ----", self.job_id, log_text)
        if status == "success":
            return {"job_id": self.job_id, "status": job_state, "result": parse_result(log_text)}
        text = f"Base Command job {self.job_id} {job_state or status}" + (f": {message}" if message else "")
        if status == "killed":
            raise AirflowFailException(text)  # killed on purpose: do not start it again
        raise AirflowException(text)

    async def _fetch_log(self, creds: NgcCredentials, job_id: str) -> str:
        async with BaseCommandClient(creds, self._retry()) as client:
            return await client.job_log(job_id)

    def on_kill(self) -> None:
        """The worker is killing this task while it runs in the worker (submit or log fetch)."""
        if not self.job_id:
            return

        async def kill() -> None:
            async with BaseCommandClient(self._credentials(), self._retry()) as client:
                await client.kill_job(self.job_id, reason="Airflow: task killed")

        try:
            _run(kill())
            self.log.info("Base Command job %s killed", self.job_id)
        except BaseCommandError as exc:
            self.log.error("Base Command job %s: kill failed: %s", self.job_id, exc)


def basecommand_job(task_id: str, bc: BaseCommandSettings, **kwargs: Any) -> BaseCommandJobOperator:
    """A BaseCommandJobOperator with the chart's settings (instance types, ACE, connection, org,
    team, poll interval); `kwargs` give the job (image, command, profile, ...)."""
    return BaseCommandJobOperator(task_id=task_id, **job_settings(bc), **kwargs)
