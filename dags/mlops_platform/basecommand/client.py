"""NVIDIA Base Command Platform (NGC) job API: credentials and an async REST client.

No Airflow operator here (that is `basecommand.operator`); this module imports only the standard
library and httpx (already in Airflow's own dependency set), so it is cheap to import at parse time.

Why not `ngcsdk`: version 4.37.0 (PyPI) ships the registry, organization, NVCF and Forge APIs but
no Base Command job API (its wheel has no `basecommand` package and no module that calls a
`/jobs` URL; only generated data classes such as JobCreateRequest/JobResponse), and it does not
install into the Airflow venv (botocore, one of its dependencies, needs python-dateutil < 3; the
lock holds 4.0.0). So this module calls the REST API directly with httpx.

Endpoints used (base URLs from the connection; `{org}`/`{team}` from its extra). Sources: [S1]
ngcsdk 4.37.0 `ngcbase/api/authentication.py` (token URL, Basic `$oauthtoken:<key>`, answer
`token` + `expires_in`); [S2] ngcsdk 3.64.4 (the last line of ngcsdk that shipped the Base
Command client) `basecommand/api/jobs.py`, `dataset.py`, `resultset.py`, `constants.py`;
[S3] ngcsdk 4.37.0 generated data classes `forge/data/api/JobResponse.py`, `JobStatus.py`,
`JobStatusEnum.py`, `DatasetListResponse.py`, `Dataset.py`, `PaginationInfo.py`; [S4] NVIDIA's
Airflow examples for Base Command (token, dataset list by name, job create, job status).

| what           | request                                                          | answer (used keys)                     | source      |
|----------------|------------------------------------------------------------------|----------------------------------------|-------------|
| token exchange | GET  {auth_url}/token?service=ngc&scope=group/ngc:{org}[&scope=group/ngc:{org}/{team}] | {"token", "expires_in"} | S1, S4     |
| dataset lookup | GET  {api_url}/v2/org/{org}[/team/{team}]/datasets?page-size=..&ace-name={ace}[&page-number=n] | {"datasets": [{"id", "name"}], "paginationInfo": {"totalPages"}} | S2, S3, S4 |
| dataset by id  | GET  {api_url}/v2/org/{org}/datasets/{id}                         | {"dataset": {"id", "name"}}             | S2, S3      |
| job create     | POST {api_url}/v2/org/{org}[/team/{team}]/jobs                    | {"job": {"id", ...}}                    | S2, S3, S4  |
| job status     | GET  {api_url}/v2/org/{org}/jobs/{id}                             | {"job": {"jobStatus": {"status", "statusDetails", "statusType"}}} | S2, S3, S4 |
| job kill       | DELETE {api_url}/v2/org/{org}/jobs/{id}?reason=..                 | (body not used)                         | S2          |
| job log        | GET  {api_url}/v2/org/{org}/resultsets/{id}/replicas/0/file/joblog.log?lines=N&log-order=LAST&offset= (redirects followed) | text | S2 |

Not confirmed (no document reachable here shows them): the log download's exact framing (the
NGC CLI follows redirects and reads the body as the log text; we do the same, and strip the
Authorization header on a redirect to another host, as httpx does), the body of the kill
answer, and orgs on NGC's newer dataset service (v1 paths) are not handled.

Errors carry `{"requestStatus": {"statusCode", "statusDescription"}}`. Transport errors, timeouts,
HTTP 429 and 5xx are retried with exponential backoff; 401 refreshes the token once. No
message, exception or log line contains the API key or a token.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .spec import ACE_PATTERN, ORG_PATTERN, BaseCommandConfigError, BaseCommandError, JobSpec, _check

DEFAULT_CONN_ID = "ngc_basecommand"
CONN_TYPE = "ngc"
DEFAULT_API_URL = "https://api.ngc.nvidia.com"
DEFAULT_AUTH_URL = "https://authn.nvidia.com"
LOG_TAIL_BYTES = 1 << 20
# Lines of the job log fetched at the end (the last ones; the NGC CLI's `--tail --lines`).
LOG_TAIL_LINES = 10000
# Dataset list page size (the NGC CLI's PAGE_SIZE) and how many pages are read at most.
DATASET_PAGE_SIZE = 500
DATASET_MAX_PAGES = 40

# Job states (jobStatus.status, JobStatusEnum). Terminal ones end the polling; the rest keep it
# going. The terminal set is the NGC CLI's TERMINAL_STATES (ngcsdk 3.64.4 basecommand/constants.py).
SUCCESS_STATES = frozenset({"FINISHED_SUCCESS"})
KILLED_STATES = frozenset({"KILLED_BY_USER", "KILLED_BY_ADMIN", "KILLED_BY_SYSTEM", "CANCELED"})
FAILED_STATES = frozenset(
    {
        "FAILED",
        "FAILED_RUN_LIMIT_EXCEEDED",
        "TASK_LOST",
        "RESOURCE_GRANT_DENIED",
        "RESOURCE_LIMIT_EXCEEDED",
        "RESOURCE_RELEASED",
        "IM_INTERNAL_ERROR",
        "INFINITY_POOL_MISSING",
        "UNKNOWN",
    }
)
# No log exists before the job runs (the NGC CLI's STATES_BEFORE_RUNNING).
STATES_BEFORE_RUNNING = frozenset({"CREATED", "QUEUED", "STARTING", "PENDING_STORAGE_CREATION", "REQUESTING_RESOURCE"})
TERMINAL_STATES = SUCCESS_STATES | KILLED_STATES | FAILED_STATES
NO_STATUS = "NO_STATUS"  # a job answer without jobStatus.status (not a platform state)


class BaseCommandApiError(BaseCommandError):
    """The API answered with an error, or could not be reached after the retries."""

    def __init__(self, message: str, http_status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code


class DatasetNotFound(BaseCommandApiError):
    """A dataset of the job spec does not exist (or is not visible to the org/team/ACE)."""


class DatasetAmbiguous(BaseCommandApiError):
    """A dataset name matches more than one dataset visible to the org/team/ACE."""


# --- credentials ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NgcCredentials:
    """The Airflow connection: API key as password; org, team, ace, api_url, auth_url in extra."""

    api_key: str = field(repr=False)
    org: str
    team: str | None = None
    ace: str | None = None
    api_url: str = DEFAULT_API_URL
    auth_url: str = DEFAULT_AUTH_URL

    def __post_init__(self) -> None:
        if not self.api_key:
            raise BaseCommandConfigError("connection: the NGC API key (connection password) is empty")
        _check("extra.org", self.org, ORG_PATTERN)
        if self.team is not None:
            _check("extra.team", self.team, ORG_PATTERN)
        if self.ace is not None:
            _check("extra.ace", self.ace, ACE_PATTERN)
        for key in ("api_url", "auth_url"):
            value = getattr(self, key)
            if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/@]+(?::\d+)?/?", value):
                raise BaseCommandConfigError(f"connection: extra.{key} must be an http(s) base URL, got {value!r}")

    @classmethod
    def from_connection(cls, conn: Any, defaults: Mapping[str, str | None] | None = None) -> NgcCredentials:
        """From an Airflow Connection (password = API key, extra = org/team/ace/api_url/auth_url).

        `defaults` (org, team, ace: the chart's basecommand.json) fill what the extra leaves out,
        so the Secret behind the connection can hold the API key alone.
        """
        extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else dict(conn.get("extra") or {})
        unknown = set(extra) - {"org", "team", "ace", "api_url", "auth_url"}
        if unknown:
            raise BaseCommandConfigError(f"connection: unknown extra key(s) {sorted(unknown)}")
        extra = {**{k: v for k, v in (defaults or {}).items() if k in ("org", "team", "ace") and v}, **extra}
        if "org" not in extra:
            raise BaseCommandConfigError(
                "connection: extra.org (the NGC org name) is required (or basecommand.org in the chart's values)"
            )
        return cls(
            api_key=conn.password or "",
            org=extra["org"],
            team=extra.get("team") or None,
            ace=extra.get("ace") or None,
            api_url=(extra.get("api_url") or DEFAULT_API_URL).rstrip("/"),
            auth_url=(extra.get("auth_url") or DEFAULT_AUTH_URL).rstrip("/"),
        )

    @classmethod
    def from_conn_id(cls, conn_id: str, defaults: Mapping[str, str | None] | None = None) -> NgcCredentials:
        from airflow.sdk import BaseHook

        return cls.from_connection(BaseHook.get_connection(conn_id), defaults)


# --- client ----------------------------------------------------------------------------------------


@dataclass
class RetryPolicy:
    attempts: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    timeout_seconds: float = 30.0

    def delay(self, attempt: int) -> float:
        base = min(self.max_backoff_seconds, self.backoff_seconds * (2**attempt))
        return base * (0.5 + random.random() / 2)  # noqa: S311 (jitter, not crypto)


_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def _mask(secret: str) -> None:
    """Tell Airflow's secrets masker (task and supervisor logs) to hide this value, if Airflow is here."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # the module is also usable without Airflow
        return
    try:
        mask_secret(secret)
    except Exception:  # noqa: BLE001,S110 (masking is a second line of defence: messages never hold secrets)
        pass


class BaseCommandClient:
    """Async client of the endpoints above; use as `async with BaseCommandClient(creds) as c`."""

    # Refresh the token when less than this is left of its lifetime.
    REFRESH_MARGIN_SECONDS = 60.0

    def __init__(self, creds: NgcCredentials, retry: RetryPolicy | None = None) -> None:
        self.creds = creds
        self.retry = retry or RetryPolicy()
        self._token: str | None = None
        self._token_refresh_at = 0.0
        self.token_exchanges = 0
        self._http: Any = None
        _mask(creds.api_key)

    async def __aenter__(self) -> BaseCommandClient:
        import httpx

        self._http = httpx.AsyncClient(timeout=self.retry.timeout_seconds, follow_redirects=False)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._http.aclose()

    # -- token -------------------------------------------------------------------------------------

    def _token_scopes(self) -> list[tuple[str, str]]:
        org, team = self.creds.org, self.creds.team
        scopes = [("service", "ngc"), ("scope", f"group/ngc:{org}")]
        if team:
            scopes.append(("scope", f"group/ngc:{org}/{team}"))
        return scopes

    async def token(self, force: bool = False) -> str:
        """A bearer token for the org/team scope (exchanged once, refreshed before it expires)."""
        if not force and self._token and time.monotonic() < self._token_refresh_at:
            return self._token
        basic = base64.b64encode(f"$oauthtoken:{self.creds.api_key}".encode()).decode()
        resp = await self._send(
            "GET",
            f"{self.creds.auth_url}/token",
            what="token exchange",
            params=self._token_scopes(),
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
        )
        if resp.status_code == 401:
            raise BaseCommandApiError(
                "token exchange: the NGC API key was refused (HTTP 401); check the connection's password",
                401,
            )
        body = self._json(resp, "token exchange")
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise BaseCommandApiError("token exchange: the answer has no token")
        lifetime = body.get("expires_in")
        lifetime = float(lifetime) if isinstance(lifetime, (int, float)) and lifetime > 0 else 300.0
        _mask(token)
        self._token = token
        # Refresh REFRESH_MARGIN_SECONDS before the end (at 80% of a shorter lifetime).
        self._token_refresh_at = time.monotonic() + lifetime - min(self.REFRESH_MARGIN_SECONDS, lifetime * 0.2)
        self.token_exchanges += 1
        return token

    # -- transport ---------------------------------------------------------------------------------

    async def _send(self, method: str, url: str, *, what: str, **kwargs: Any) -> Any:
        """One request with retries on transport errors, timeouts, 429 and 5xx."""
        import httpx

        last = ""
        for attempt in range(self.retry.attempts):
            try:
                resp = await self._http.request(method, url, **kwargs)
            except httpx.TimeoutException:
                last = f"timed out after {self.retry.timeout_seconds:g} s"
            except httpx.TransportError as exc:
                last = f"unreachable ({type(exc).__name__})"
            else:
                if resp.status_code not in _RETRY_STATUS:
                    return resp
                last = f"HTTP {resp.status_code}{self._describe(resp)}"
            if attempt + 1 < self.retry.attempts:
                await asyncio.sleep(self.retry.delay(attempt))
        raise BaseCommandApiError(f"{what}: {last} ({self.retry.attempts} attempts)")

    async def _api(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        params: Any = None,
        expect_json: bool = True,
        follow_redirects: bool = False,
    ) -> Any:
        url = f"{self.creds.api_url}{path}"
        for refreshed in (False, True):
            token = await self.token(force=refreshed)
            resp = await self._send(
                method,
                url,
                what=what,
                json=json,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                # httpx drops the Authorization header when a redirect leaves the API's host.
                follow_redirects=follow_redirects,
            )
            if resp.status_code == 401 and not refreshed:
                continue  # token expired or revoked: exchange the key again, once
            break
        if resp.status_code == 404 and what.startswith("dataset"):
            raise DatasetNotFound(f"{what}: not found{self._describe(resp)}", 404)
        if resp.status_code >= 400:
            raise BaseCommandApiError(f"{what}: HTTP {resp.status_code}{self._describe(resp)}", resp.status_code)
        return self._json(resp, what) if expect_json else resp.text

    @staticmethod
    def _describe(resp: Any) -> str:
        try:
            status = resp.json().get("requestStatus") or {}
        except ValueError:
            return ""
        code, text = status.get("statusCode"), status.get("statusDescription")
        return f" [{code}] {text}" if code or text else ""

    @staticmethod
    def _json(resp: Any, what: str) -> dict[str, Any]:
        try:
            body = resp.json()
        except ValueError:
            raise BaseCommandApiError(f"{what}: the answer is not JSON (HTTP {resp.status_code})") from None
        if not isinstance(body, dict):
            raise BaseCommandApiError(f"{what}: the answer is not a JSON object")
        return body

    def _org(self) -> str:
        return f"/v2/org/{self.creds.org}"

    # -- endpoints ---------------------------------------------------------------------------------

    def _team(self) -> str:
        return f"/team/{self.creds.team}" if self.creds.team else ""

    async def dataset(self, dataset_id: str) -> dict[str, Any]:
        """One dataset by id (DatasetResponse: {"dataset": {...}})."""
        body = await self._api("GET", f"{self._org()}/datasets/{dataset_id}", what=f"dataset {dataset_id}")
        return body.get("dataset") or body

    async def datasets(self, ace: str | None = None) -> list[dict[str, Any]]:
        """The datasets the org (team) can use in `ace`, every page (DatasetListResponse)."""
        found: list[dict[str, Any]] = []
        page = 0
        while True:
            params: list[tuple[str, Any]] = [("page-size", DATASET_PAGE_SIZE)]
            if ace:
                params.append(("ace-name", ace))
            if page:
                params.append(("page-number", page))
            body = await self._api("GET", f"{self._org()}{self._team()}/datasets", what="dataset list", params=params)
            items = body.get("datasets") or []
            if not isinstance(items, list):
                raise BaseCommandApiError("dataset list: the answer's 'datasets' is not a list")
            found.extend(d for d in items if isinstance(d, dict))
            info = body.get("paginationInfo") or {}
            pages = info.get("totalPages")
            if not isinstance(pages, int) or isinstance(pages, bool):
                size, total = info.get("size"), info.get("totalResults")
                pages = -(-total // size) if isinstance(size, int) and size > 0 and isinstance(total, int) else 1
            page += 1
            if page >= min(pages, DATASET_MAX_PAGES) or not items:
                return found

    async def resolve_datasets(self, names: Sequence[str], ace: str | None = None) -> dict[str, str]:
        """Dataset name -> id, looked up in the list (one call per page, however many names).

        A name no dataset has raises DatasetNotFound; a name two datasets have, DatasetAmbiguous.
        """
        if not names:
            return {}
        listed = await self.datasets(ace)
        ids: dict[str, str] = {}
        where = f"org {self.creds.org}" + (f", team {self.creds.team}" if self.creds.team else "") + (
            f", ACE {ace}" if ace else ""
        )
        for name in dict.fromkeys(names):
            matches = sorted({str(d.get("id")) for d in listed if d.get("name") == name and d.get("id") is not None})
            if not matches:
                raise DatasetNotFound(f"dataset {name!r}: no dataset of that name in {where} ({len(listed)} listed)", 404)
            if len(matches) > 1:
                raise DatasetAmbiguous(f"dataset {name!r}: {len(matches)} datasets of that name in {where} (ids {matches}); give the id")
            ids[name] = matches[0]
        return ids

    async def create_job(self, spec: JobSpec) -> dict[str, Any]:
        body = await self._api(
            "POST", f"{self._org()}{self._team()}/jobs", what=f"job create {spec.name}", json=spec.body()
        )
        job = body.get("job")
        if not isinstance(job, dict) or "id" not in job:
            raise BaseCommandApiError(f"job create {spec.name}: the answer has no job id")
        return job

    async def job(self, job_id: str | int) -> dict[str, Any]:
        body = await self._api("GET", f"{self._org()}/jobs/{job_id}", what=f"job {job_id} status")
        job = body.get("job")
        if not isinstance(job, dict):
            raise BaseCommandApiError(f"job {job_id} status: the answer has no job")
        return job

    async def kill_job(self, job_id: str | int, reason: str | None = None) -> None:
        """Kill a job: DELETE on the job (the NGC CLI's `ngc batch kill`)."""
        await self._api(
            "DELETE",
            f"{self._org()}/jobs/{job_id}",
            what=f"job {job_id} kill",
            params=[("reason", reason[:200])] if reason else None,
            expect_json=False,
        )

    async def job_log(self, job_id: str | int, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the job's log (joblog.log of its result set, replica 0)."""
        text = await self._api(
            "GET",
            f"{self._org()}/resultsets/{job_id}/replicas/0/file/joblog.log",
            what=f"job {job_id} log",
            params=[("lines", lines), ("log-order", "LAST"), ("offset", "")],
            expect_json=False,
            follow_redirects=True,
        )
        return text[-LOG_TAIL_BYTES:]


def job_status(job: Mapping[str, Any]) -> tuple[str, str]:
    """(status, message) of a job object: jobStatus.status and its details/exit code.

    An answer without a status gives NO_STATUS, which is not terminal (polling goes on); the
    platform's own UNKNOWN is terminal, as in the NGC CLI.
    """
    st = job.get("jobStatus") or {}
    status = str(st.get("status") or NO_STATUS)
    parts = [str(st[k]) for k in ("statusDetails", "statusType") if st.get(k)]
    if st.get("exitCode") not in (None, ""):
        parts.append(f"exit code {st['exitCode']}")
    return status, "; ".join(parts)
