"""Airflow 3.1.8 as deployed, for the tests that need its scheduler (pools, concurrency): the
metadata DB on a private PostgreSQL 15 (tests/support/postgres.py), the scheduler with
LocalExecutor, the API server (public REST API + the execution API the task processes report
to), and the DAG processor, each `airflow <component>` of the project's .venv in its own process
group, on 127.0.0.1 only (the scheduler's log server is off: --skip-serve-logs).

What the chart would provide comes from the installed release (tests/cluster/pipelines.py):
platform.json and the pod templates as mounted files, the pools from the chart's rendered pools
ConfigMap imported with `airflow pools import` as the chart's pools Job does, the launcher's
TokenRequest kubeconfig as connection `kubernetes_default`.

kwok nodes run no containers, so the operator settings tests/cluster/pipelines.py applies per
DAG object (get_logs=False, short retry delays, a 2 min schedule timeout) are applied here by
Airflow's own mechanism for it: a cluster policy (``task_policy`` in
``$AIRFLOW_HOME/config/airflow_local_settings.py``), which the DAG processor and every task
process run on each parsed task. It also gives the GPU pool's pods the kwok annotation
``mlops.test/kwok-delay`` (how long kwok keeps them Running). MLflow is a stand-in HTTP server
(`MlflowStandinServer`) at the tracking URI of the copied platform.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from tests.support import net, postgres, processes
from tests.support.paths import DAGS_DIR, REPO
from tests.support.platform_env import write_platform_files

AIRFLOW = REPO / ".venv" / "bin" / "airflow"

LOCAL_SETTINGS = '''\
"""Cluster policy of the control-plane tests (written by tests/cluster/airflow_services.py)."""
from datetime import timedelta

GPU_POOL = {gpu_pool!r}
GPU_POD_DELAY = {gpu_delay!r}


def task_policy(task):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    task.retry_delay = timedelta(seconds=1)
    task.retry_exponential_backoff = False
    cls = getattr(task, "operator_class", None)
    mapped = hasattr(task, "partial_kwargs")
    if not (isinstance(task, KubernetesPodOperator) or (isinstance(cls, type) and issubclass(cls, KubernetesPodOperator))):
        return
    # kwok has no kubelet: no pod logs; a pod that cannot be placed fails within 2 min
    settings = {{"get_logs": False, "schedule_timeout_seconds": 120}}
    if task.pool == GPU_POOL:
        current = (task.partial_kwargs.get("annotations") if mapped else task.annotations) or {{}}
        settings["annotations"] = {{**current, "mlops.test/kwok-delay": GPU_POD_DELAY}}
    for key, value in settings.items():
        if mapped:
            task.partial_kwargs[key] = value
        else:
            setattr(task, key, value)
'''


class MlflowStandinServer:
    """The four MLflow REST calls gpu_sweep's `compare` makes (experiments/get-by-name,
    runs/search, runs/set-tag), answered on 127.0.0.1: one run per sweep profile with a metric."""

    SCORES = {"gpu-1": 0.90, "gpu-2": 0.93, "gpu-4": 0.97, "gpu-8": 0.95}

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                outer.calls.append(("GET " + self.path.split("?")[0], {}))
                self._answer({"experiment": {"experiment_id": "1", "name": "gpu-sweep"}})

            def do_POST(self):  # noqa: N802
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                outer.calls.append(("POST " + self.path, payload))
                if self.path.endswith("/runs/search"):
                    self._answer({"runs": [
                        {"info": {"run_id": f"run-{p}"},
                         "data": {"metrics": [{"key": "test_accuracy", "value": v}, {"key": "test_f1_macro", "value": v}],
                                  "tags": [{"key": "mlops.sweep_profile", "value": p}]}}
                        for p, v in outer.SCORES.items()]})
                else:
                    self._answer({})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        with processes.serving_in_thread(self.server) as port:
            yield f"http://127.0.0.1:{port}"


def dag_folder(dest: Path, dag_files: list[str]) -> Path:
    """The platform's DAG folder with only the DAG files named, its packages and data directories
    (mlops_platform, sweeps, ...: every directory of dags/) and .airflowignore: the DAG processor
    parses what the test runs, nothing else."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for path in DAGS_DIR.iterdir():
        if path.is_dir() and path.name != "__pycache__":
            shutil.copytree(path, dest / path.name, ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    for name in [*dag_files, ".airflowignore"]:
        if (DAGS_DIR / name).exists():
            shutil.copy2(DAGS_DIR / name, dest / name)
    return dest


def platform_files_with_tracking_uri(platform, dest: Path, tracking_uri: str) -> Path:
    """A copy of the chart's platform files (platform.json, its schema, ...) whose MLflow tracking
    URI is the stand-in's."""
    mlflow = {**platform.platform["mlflow"], "trackingUri": tracking_uri}
    write_platform_files(platform.directory, dest, platform.platform, mlflow=mlflow)
    return dest


class Airflow:
    """The running components and a client of the public REST API (simple auth manager, every
    user admin: a token from /auth/token)."""

    def __init__(self, home: Path, env: dict[str, str], api_port: int):
        self.home, self.env, self.api_port = home, env, api_port
        self.base = f"http://127.0.0.1:{api_port}"
        self._token: str | None = None
        self.logs = home / "logs-components"

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(AIRFLOW), *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=self.home)
        if proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            r = requests.get(f"{self.base}/auth/token", timeout=30)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def api(self, method: str, path: str, body: dict | None = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        r = requests.request(method, f"{self.base}/api/v2/{path}", json=body, headers=self._headers(), timeout=30)
        if r.status_code not in ok:
            raise AssertionError(f"{method} /api/v2/{path}: HTTP {r.status_code}: {r.text[:1000]}")
        return r.json() if r.content else None

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 300) -> None:
        """Until the DAG processor has parsed and serialized each DAG (no import errors)."""
        deadline = time.monotonic() + timeout
        while True:
            errors = self.api("GET", "importErrors").get("import_errors", [])
            assert not errors, f"DAG import errors: {errors}"
            have = {d["dag_id"] for d in self.api("GET", "dags?limit=100").get("dags", [])}
            if set(dag_ids) <= have:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"DAGs {sorted(set(dag_ids) - have)} not parsed after {timeout:.0f}s:\n"
                                     + processes.tail(self.logs / "dag-processor.log"))
            time.sleep(2)

    def trigger(self, dag_id: str, conf: dict[str, Any], run_id: str) -> str:
        self.api("PATCH", f"dags/{dag_id}", {"is_paused": False})
        self.api("POST", f"dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None, "conf": conf})
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]

    def pool(self, name: str) -> dict[str, Any]:
        return self.api("GET", f"pools/{name}")


def airflow_env(home: Path, db_url: str, api_port: int, folder: Path, platform_dir: Path, templates_dir: Path,
                kubeconfig: Path, parallelism: int = 16) -> dict[str, str]:
    """The components' environment: this process's without any AIRFLOW* setting of the test
    session (its sqlite home, unit-test mode), plus the deployment's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST", "KUBECONFIG"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(parallelism),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "MLOPS_PLATFORM_DIR": str(platform_dir),
        "MLOPS_POD_TEMPLATES_DIR": str(templates_dir),
        "KUBECONFIG": str(kubeconfig),
        "AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig), "in_cluster": False}}),
        "PYTHONUNBUFFERED": "1",
    })
    return env


@contextlib.contextmanager
def airflow_deployment(root: Path, platform, pools_json: str, dag_files: list[str], gpu_pod_delay: str,
                       tracking_uri: str) -> Iterator[Airflow]:
    """PostgreSQL, `airflow db migrate`, the chart's pools imported, then the API server, the DAG
    processor and the scheduler until the block ends (all stopped, the database removed)."""
    home = root / "airflow-home"
    (home / "config").mkdir(parents=True, exist_ok=True)
    gpu_pool = platform.gpu_pool[0]
    (home / "config" / "airflow_local_settings.py").write_text(
        LOCAL_SETTINGS.format(gpu_pool=gpu_pool, gpu_delay=gpu_pod_delay))
    folder = dag_folder(root / "dags", dag_files)
    platform_dir = platform_files_with_tracking_uri(platform, root / "platform", tracking_uri)
    (root / "pools.json").write_text(pools_json)
    api_port = net.free_port()
    with postgres.server() as pg:
        pg.create_database("airflow")
        env = airflow_env(home, pg.url("airflow", "postgresql+psycopg2"), api_port, folder, platform_dir,
                          platform.templates_dir, platform.kubeconfig)
        af = Airflow(home, env, api_port)
        af.cli("db", "migrate", timeout=600)
        af.cli("pools", "import", str(root / "pools.json"))  # what the chart's pools Job runs
        with contextlib.ExitStack() as stack:
            stack.enter_context(processes.running(
                [str(AIRFLOW), "api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"],
                af.logs / "api-server.log", env, f"{af.base}/api/v2/monitor/health", timeout=240, cwd=home))
            stack.enter_context(processes.running(
                [str(AIRFLOW), "dag-processor"], af.logs / "dag-processor.log", env, lambda: True, cwd=home))
            stack.enter_context(processes.running(
                [str(AIRFLOW), "scheduler", "--skip-serve-logs"], af.logs / "scheduler.log", env, lambda: True,
                cwd=home))
            yield af


def component_logs(af: Airflow, lines: int = 30) -> str:
    return "\n".join(f"--- {p.name}\n{processes.tail(p, lines)}" for p in sorted(af.logs.glob("*.log")))


class Sampler:
    """Samples, every `interval` seconds from a thread, the GPU pool (its occupied slots, as the
    REST API reports them) and the GPUs the nodes have allocated (nvidia.com/gpu limits of the
    pods bound to each node and not finished, as the API server has them)."""

    def __init__(self, af: Airflow, cluster, pool: str, namespace: str, gpu_nodes: set[str], interval: float = 1.0):
        self.af, self.cluster, self.pool, self.namespace, self.gpu_nodes = af, cluster, pool, namespace, gpu_nodes
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="gpu-pool-sampler")

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pool = self.af.pool(self.pool)
                alloc = dict.fromkeys(sorted(self.gpu_nodes), 0)
                for p in self.cluster.core.list_namespaced_pod(self.namespace).items:
                    if p.spec.node_name in alloc and p.status.phase not in ("Succeeded", "Failed"):
                        for c in p.spec.containers:
                            alloc[p.spec.node_name] += int(((c.resources and c.resources.limits) or {}).get("nvidia.com/gpu", 0))
                self.samples.append({"t": time.monotonic(), "occupied": pool["occupied_slots"],
                                     "running_slots": pool["running_slots"], "slots": pool["slots"], "allocated": alloc})
            except Exception as exc:  # keep sampling; reported if nothing was sampled
                self.errors.append(repr(exc))
            self._stop.wait(self.interval)

