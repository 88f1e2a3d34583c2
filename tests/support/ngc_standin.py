"""A STAND-IN for NVIDIA's NGC token service and Base Command Platform job API, on 127.0.0.1.

NVIDIA's cloud cannot be reached from the test machines. This server answers exactly the
requests mlops_platform.basecommand.client sends (its module docstring has the table, with sources),
with the paths and response shapes taken from NVIDIA's own client code:

- token exchange `GET /token?service=ngc&scope=group/ngc:<org>[&scope=group/ngc:<org>/<team>]`,
  `Authorization: Basic base64("$oauthtoken:<API key>")` -> `{"token", "expires_in"}` (ngcsdk
  4.37.0 ngcbase/api/authentication.py);
- dataset list `GET /v2/org/<org>[/team/<team>]/datasets?page-size=&ace-name=&page-number=` ->
  `{"datasets": [...], "paginationInfo": {"index", "size", "totalPages", "totalResults"}}`,
  dataset `GET /v2/org/<org>/datasets/<id>` -> `{"dataset": {...}}`, job create
  `POST /v2/org/<org>[/team/<team>]/jobs` -> `{"job": {...}}`, job status
  `GET /v2/org/<org>/jobs/<id>` -> `{"job": {"jobStatus": {"status", "statusDetails"}}}`, job kill
  `DELETE /v2/org/<org>/jobs/<id>[?reason=]`, job log
  `GET /v2/org/<org>/resultsets/<id>/replicas/0/file/joblog.log?lines=&log-order=LAST` (text;
  404 before the job ran) (ngcsdk 3.64.4 basecommand/api/jobs.py, dataset.py, resultset.py;
  data classes of ngcsdk 4.37.0 forge/data/api: JobResponse, JobStatus, JobStatusEnum,
  DatasetListResponse, PaginationInfo);
- errors `{"requestStatus": {"statusCode", "statusDescription"}}`.

It is not NVIDIA's service: behaviour is scripted per test (status sequence per job, token
lifetime, injected HTTP errors and delays, page size, a redirected log download) and every
request is recorded for assertions.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

API_KEY = "nvapi-STANDIN-secret-key-0123456789"
ORG = "mlops-org"
TEAM = "ml-team"
ACE = "nv-standin-ace-1"
INSTANCE_TYPES = {
    "gpu-1": "dgxa100.80g.1.norm",
    "gpu-2": "dgxa100.80g.2.norm",
    "gpu-4": "dgxa100.80g.4.norm",
    "gpu-8": "dgxa100.80g.8.norm",
}
# The datasets the org can use (DatasetSimplified: id, name, aceName, ...). Two share a name.
DATASETS = [
    {"id": 101, "name": "iris-train", "aceName": ACE, "status": "UPLOAD_COMPLETE"},
    {"id": 102, "name": "iris-test", "aceName": ACE, "status": "UPLOAD_COMPLETE"},
    {"id": 103, "name": "imagenet-mini", "aceName": ACE, "status": "UPLOAD_COMPLETE"},
    {"id": 104, "name": "shared-name", "aceName": ACE, "status": "UPLOAD_COMPLETE"},
    {"id": 105, "name": "shared-name", "aceName": ACE, "status": "UPLOAD_COMPLETE"},
    {"id": 201, "name": "iris-train", "aceName": "other-ace", "status": "UPLOAD_COMPLETE"},
]
# States in which a job has no log yet (the NGC CLI's STATES_BEFORE_RUNNING).
BEFORE_RUNNING = ("CREATED", "QUEUED", "STARTING", "PENDING_STORAGE_CREATION", "REQUESTING_RESOURCE")

# Default life of a job, one entry per status poll: queued, starting, running twice, success.
DEFAULT_PLAN = ("QUEUED", "STARTING", "RUNNING", "RUNNING", "FINISHED_SUCCESS")


@dataclass
class Job:
    id: int
    body: dict[str, Any]
    plan: list[str]
    polls: int = 0
    status: str = "CREATED"
    details: str = ""
    log: str = ""


@dataclass
class Standin:
    """Scriptable state of the stand-in; change attributes between requests from the tests."""

    api_key: str = API_KEY
    org: str = ORG
    team: str = TEAM
    token_ttl: float = 300.0
    plan: tuple[str, ...] = DEFAULT_PLAN
    # Message of a failed final state (jobStatus.statusDetails).
    failure_details: str = "Container exited with a non-zero status: exit code 3"
    # The job's log: a function of the job (default: echo the command and a result line).
    log_for: Callable[[Job], str] | None = None
    # Injected faults: endpoint kind -> list of HTTP statuses answered (one per request) first.
    faults: dict[str, list[int]] = field(default_factory=dict)
    # Endpoint kind -> seconds to sleep before answering (longer than the client's timeout = timeout).
    delays: dict[str, float] = field(default_factory=dict)
    # Largest dataset page answered, whatever page-size asks (small: every lookup pages).
    max_page_size: int = 2
    # Answer the log request with a redirect to a download path (as a storage URL would).
    log_redirect: bool = False
    jobs: dict[int, Job] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (time.time())
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, kind)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 4_000_000

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def kinds(self) -> list[str]:
        return [k for _, _, k in self.requests]

    def killed(self) -> list[int]:
        return [j.id for j in self.jobs.values() if j.status == "KILLED_BY_USER"]

    def paths(self, kind: str) -> list[str]:
        return [p for _, p, k in self.requests if k == kind]


def _default_log(job: Job) -> str:
    gpus = re.search(r"\.(\d+)\.norm$", job.body.get("aceInstance", ""))
    n = int(gpus.group(1)) if gpus else 1
    return (
        f"+ {job.body.get('command')}\n"
        f"training on {n} GPU(s)\n"
        f'MLOPS_RESULT {{"gpus": {n}, "test_accuracy": {0.90 + n / 100:.2f}, "seconds": {120 / n:.1f}}}\n'
    )


def _error(code: str, text: str) -> dict[str, Any]:
    return {"requestStatus": {"statusCode": code, "statusDescription": text}}


class _Handler(BaseHTTPRequestHandler):
    state: Standin  # set on the subclass by NgcStandin

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> tuple[str, dict[str, str]]:
        path = urlparse(self.path).path.rstrip("/")
        org = re.escape(self.state.org)
        routes = [
            ("GET", r"^/token$", "token"),
            ("GET", rf"^/v2/org/{org}(?:/team/(?P<team>[^/]+))?/datasets$", "datasets"),
            ("GET", rf"^/v2/org/{org}/datasets/(?P<ds>[^/]+)$", "dataset"),
            ("POST", rf"^/v2/org/{org}(?:/team/(?P<team>[^/]+))?/jobs$", "create"),
            ("GET", rf"^/v2/org/{org}/jobs/(?P<job>\d+)$", "status"),
            ("DELETE", rf"^/v2/org/{org}/jobs/(?P<job>\d+)$", "kill"),
            ("GET", rf"^/v2/org/{org}/resultsets/(?P<job>\d+)/replicas/0/file/joblog\.log$", "log"),
            ("GET", r"^/storage/(?P<job>\d+)/joblog\.log$", "download"),
        ]
        for m, pattern, kind in routes:
            match = re.match(pattern, path)
            if m == method and match:
                return kind, {k: v for k, v in match.groupdict().items() if v is not None}
        return "unknown", {}

    def _query(self) -> dict[str, list[str]]:
        return parse_qs(urlparse(self.path).query, keep_blank_values=True)

    def _handle(self, method: str) -> None:
        st = self.state
        kind, args = self._route(method)
        with st.lock:
            st.requests.append((method, self.path, kind))
            delay = st.delays.get(kind, 0.0)
            fault = st.faults.get(kind, [])
            injected = fault.pop(0) if fault else None
        if delay:
            time.sleep(delay)
        if injected:
            return self._send(injected, _error("SERVICE_UNAVAILABLE", "stand-in: injected error"))
        if kind == "unknown":
            return self._send(404, _error("NOT_FOUND", f"no such endpoint {method} {self.path}"))
        if kind == "token":
            return self._token()
        if kind == "download":  # a pre-signed storage URL needs no bearer token
            return self._download(**args)
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        with st.lock:
            valid = auth.startswith("Bearer ") and st.tokens.get(token, 0) > time.time()
        if not valid:
            return self._send(401, _error("UNAUTHORIZED", "token missing, expired or revoked"))
        getattr(self, f"_{kind}")(**args)

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    # -- endpoints -------------------------------------------------------------------------------

    def _token(self) -> None:
        st = self.state
        expected = base64.b64encode(f"$oauthtoken:{st.api_key}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            return self._send(401, _error("UNAUTHORIZED", "Invalid apikey"))
        query = self._query()
        scopes = set(query.get("scope", []))
        if query.get("service") != ["ngc"] or f"group/ngc:{st.org}" not in scopes:
            return self._send(400, _error("INVALID_REQUEST", f"scope group/ngc:{st.org} required"))
        with st.lock:
            token = f"standin-token-{len(st.tokens) + len(st.requests)}-{time.monotonic_ns()}"
            st.tokens[token] = time.time() + st.token_ttl
        self._send(200, {"token": token, "expires_in": st.token_ttl})

    def _datasets(self, team: str | None = None) -> None:
        st = self.state
        if team is not None and team != st.team:
            return self._send(403, _error("FORBIDDEN", f"not a member of team {team}"))
        query = self._query()
        size = min(int(query.get("page-size", ["25"])[0]), st.max_page_size)
        page = int(query.get("page-number", ["0"])[0])
        ace = query.get("ace-name", [None])[0]
        rows = [d for d in DATASETS if ace is None or d["aceName"] == ace]
        pages = max(1, -(-len(rows) // size))
        info = {"index": page, "size": size, "totalPages": pages, "totalResults": len(rows)}
        body = {"datasets": rows[page * size : (page + 1) * size], "paginationInfo": info}
        self._send(200, {**body, "requestStatus": {"statusCode": "SUCCESS"}})

    def _dataset(self, ds: str) -> None:
        found = [d for d in DATASETS if str(d["id"]) == ds]
        if not found:
            return self._send(404, _error("NOT_FOUND", f"Dataset {ds} not found in org {self.state.org}"))
        self._send(200, {"dataset": found[0], "requestStatus": {"statusCode": "SUCCESS"}})

    def _create(self, team: str | None = None) -> None:
        st = self.state
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if team is not None and team != st.team:
            return self._send(403, _error("FORBIDDEN", f"not a member of team {team}"))
        if body.get("aceInstance") not in INSTANCE_TYPES.values():
            return self._send(
                400, _error("INVALID_REQUEST", f"Invalid instance type {body.get('aceInstance')!r} for ACE")
            )
        if body.get("aceName") != ACE:
            return self._send(400, _error("INVALID_REQUEST", f"Unknown ACE {body.get('aceName')!r}"))
        if not isinstance(body.get("command"), str):
            return self._send(400, _error("INVALID_REQUEST", "command must be a string"))
        with st.lock:
            st._next_id += 1
            job = Job(id=st._next_id, body=body, plan=list(st.plan))
            job.log = (st.log_for or _default_log)(job)
            st.jobs[job.id] = job
        self._send(200, {"job": self._job_view(job), "jobStatusHistory": [], "requestStatus": {"statusCode": "SUCCESS"}})

    def _job_view(self, job: Job) -> dict[str, Any]:
        status: dict[str, Any] = {"status": job.status}
        if job.details:
            status["statusDetails"] = job.details
        return {"id": job.id, "name": job.body.get("name"), "aceInstance": job.body.get("aceInstance"), "jobStatus": status}

    def _job_or_404(self, job: str) -> Job | None:
        """The job (caller holds the lock), or None after answering 404."""
        j = self.state.jobs.get(int(job))
        if j is None:
            self._send(404, _error("NOT_FOUND", f"job {job} not found"))
        return j

    def _status(self, job: str) -> None:
        st = self.state
        with st.lock:
            if (j := self._job_or_404(job)) is None:
                return None
            if j.status != "KILLED_BY_USER" and j.plan:
                j.status = j.plan.pop(0)
                if j.status in ("FAILED", "FAILED_RUN_LIMIT_EXCEEDED"):
                    j.details = st.failure_details
            j.polls += 1
            view = self._job_view(j)
        self._send(200, {"job": view, "requestStatus": {"statusCode": "SUCCESS"}})

    def _kill(self, job: str) -> None:
        st = self.state
        with st.lock:
            if (j := self._job_or_404(job)) is None:
                return None
            reason = self._query().get("reason", [""])[0]
            j.status, j.details, j.plan = "KILLED_BY_USER", f"Job was killed by the user {reason}".strip(), []
        self._send(200, {"requestStatus": {"statusCode": "SUCCESS"}})

    def _log(self, job: str) -> None:
        with self.state.lock:
            if (j := self._job_or_404(job)) is None:
                return None
            started = j.status not in BEFORE_RUNNING
        if not started:
            return self._send(404, _error("NOT_FOUND", f"no result set for job {job} yet"))
        if self.state.log_redirect:
            self.send_response(302)
            self.send_header("Location", f"/storage/{job}/joblog.log?signature=standin")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return self._download(job)

    def _download(self, job: str) -> None:
        with self.state.lock:
            if (j := self._job_or_404(job)) is None:
                return None
            text = j.log
        self._send(200, text, "text/plain")


class NgcStandin:
    """Context manager: the stand-in server on 127.0.0.1 (both auth and API on one port)."""

    def __init__(self, state: Standin | None = None) -> None:
        self.state = state or Standin()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def connection(self, **extra: Any) -> dict[str, Any]:
        """The Airflow connection (JSON form of AIRFLOW_CONN_*) pointing at this stand-in."""
        return {
            "conn_type": "ngc",
            "password": self.state.api_key,
            "extra": {"org": self.state.org, "team": self.state.team, "ace": ACE,
                      "api_url": self.url, "auth_url": self.url, **extra},
        }

    def __enter__(self) -> NgcStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


def write_basecommand(directory: Path, **overrides: Any) -> Path:
    """A basecommand.json enabling the backend against this stand-in (org, ACE, instance types), with
    the chart's basecommand.schema.json beside it, as the chart ships them in the platform ConfigMap."""
    from tests.support import paths

    doc = {
        "enabled": True,
        "connId": "ngc_basecommand",
        "defaultBackend": "kubernetes",
        "org": ORG,
        "ace": ACE,
        "image": f"{ORG}/trainer:1.0",
        "instanceTypes": INSTANCE_TYPES,
        "timeLimitSeconds": 600,
        "pollSeconds": 1,
        **overrides,
    }
    (directory / "basecommand.json").write_text(json.dumps(doc))
    schema = paths.CHART_DIR / "files" / "basecommand.schema.json"
    (directory / schema.name).write_text(schema.read_text(encoding="utf-8"))
    return directory
