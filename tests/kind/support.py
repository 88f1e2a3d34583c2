"""Helpers of the kind end-to-end tests: port-forwards, the Airflow REST API, waiting with output.

Imports only the standard library and requests at module level, so `make test` (without
pytest-helm-charts, without a cluster) collects tests/kind and skips it with a reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "mlops"
RELEASE = "mlops"
FULLNAME = f"{RELEASE}-airflow-mlops"
CLUSTER = os.environ.get("MLOPS_KIND_CLUSTER", "mlops")
CONTROL_PLANE = f"{CLUSTER}-control-plane"
GPU_NODE = f"{CLUSTER}-worker"
INGRESS_HTTP = "http://127.0.0.1:18080"  # scripts/kind/cluster.yaml extraPortMappings
GIT_REPO_PATH = "/srv/git/platform.git"

# Confs of run_job the kind tests send (also sent to a real API server, without a cluster, by
# tests/scripts/test_kind_airflow_api.py): each bad one must get HTTP 400 and no run.
RUN_JOB_BAD_CONFS = {
    "shell-string": {"command": "sh -c 'id'"},
    "gpu-visibility": {"env": {"NVIDIA_VISIBLE_DEVICES": "all"}},
    "newline-tag": {"tag": "1.0.0\n"},
    "foreign-registry": {"image": "docker.io/library/alpine"},
    "latest-tag": {"tag": "latest"},
    "unknown-profile": {"profile": "gpu-3"},
    "reserved-env": {"env": {"MLFLOW_TRACKING_URI": "http://evil"}},
    "timeout-too-long": {"timeout_seconds": 10**9},
}
# A job that runs 45 s on the cpu profile (its pod is deleted while it runs: retried).
RUN_JOB_RETRY_CONF = {
    "image": "trainer",
    "tag": "dev",
    "command": ["python", "-c", "import time; print('working', flush=True); time.sleep(45); print('done')"],
    "profile": "cpu",
    "timeout_seconds": 600,
}


def kubeconfig() -> str:
    return os.environ.get("KUBECONFIG") or str(REPO / ".kind" / "kubeconfig")


def log(msg: str) -> None:
    print(f"[kind-test {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 3.0) -> Any:
    """Call `check` until it returns a truthy value; print progress; fail after `timeout`."""
    start = time.monotonic()
    last = 0.0
    while True:
        value = check()
        if value:
            log(f"{what}: ok after {time.monotonic() - start:.0f}s")
            return value
        elapsed = time.monotonic() - start
        if elapsed > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        if elapsed - last >= 15:
            log(f"waiting for {what} ({elapsed:.0f}s / {timeout:.0f}s)")
            last = elapsed
        time.sleep(interval)


def service_of(url: str) -> tuple[str, int]:
    """('<service>', port) of an in-cluster URL http://<service>.<ns>.svc...:<port>."""
    parsed = urlparse(url)
    return parsed.hostname.split(".")[0], parsed.port or 80


@contextlib.contextmanager
def port_forward(resource: str, remote_port: int, namespace: str = NAMESPACE) -> Iterator[int]:
    """`kubectl port-forward` on a free local port for the duration of the block."""
    proc = subprocess.Popen(
        [
            "kubectl",
            "--kubeconfig",
            kubeconfig(),
            "-n",
            namespace,
            "port-forward",
            "--address",
            "127.0.0.1",
            resource,
            f":{remote_port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        m = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) ", line)
        if not m:
            proc.kill()
            raise AssertionError(f"kubectl port-forward {resource}: {line}{proc.stdout.read()}")
        yield int(m.group(1))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Kube:
    """pytest-helm-charts' cluster (pykube client + kubectl wrapper) with the few queries we need."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.api = cluster.kube_client

    def kubectl(self, cmd: str, **kwargs: str) -> Any:
        return self.cluster.kubectl(cmd, **kwargs)

    def pods(
        self, selector: dict[str, str] | None = None, namespace: str = NAMESPACE
    ) -> list[dict[str, Any]]:
        import pykube

        query = pykube.Pod.objects(self.api).filter(namespace=namespace, selector=selector or {})
        return [p.obj for p in query]

    def node(self, name: str) -> dict[str, Any]:
        import pykube

        return pykube.Node.objects(self.api).get(name=name).obj

    def diagnostics(self, namespace: str = NAMESPACE) -> str:
        """kubectl get pods + describe/logs of every pod that is not Ready (for failure messages)."""
        out = []
        for cmd in (["get", "pods", "-o", "wide"], ["get", "events", "--sort-by=.lastTimestamp"]):
            out.append(_kubectl_text([*cmd, "-n", namespace])[-6000:])
        for pod in self.pods(namespace=namespace):
            if not pod_ready(pod) and pod["status"].get("phase") != "Succeeded":
                name = pod["metadata"]["name"]
                out.append(_kubectl_text(["describe", "pod", name, "-n", namespace])[-4000:])
                out.append(_kubectl_text(["logs", name, "-n", namespace, "--all-containers", "--tail=40"]))
        return "\n".join(out)


class KubectlKube(Kube):
    """The same queries through kubectl alone (provider realnode runs in .venv, without
    pytest-helm-charts/pykube): ``kubectl(cmd, namespace=, output_format="json"|"", std_input=)``
    as pytest-helm-charts' cluster.kubectl."""

    def __init__(self) -> None:  # noqa: D107 - no pykube client
        self.cluster = None
        self.api = None

    def kubectl(self, cmd: str, namespace: str | None = None, output_format: str = "json",
                std_input: str | None = None, **kwargs: str) -> Any:
        import json
        import shlex

        args = ["kubectl", "--kubeconfig", kubeconfig(), *shlex.split(cmd)]
        if namespace:
            args += ["-n", namespace]
        if output_format:
            args += ["-o", output_format]
        if std_input is not None:
            args += ["-f", "-"]
        proc = subprocess.run(args, input=std_input, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)}: {proc.stderr}")
        if output_format != "json":
            return proc.stdout
        found = json.loads(proc.stdout)
        # like pytest-helm-charts: a list answer is its items
        return found["items"] if found.get("kind", "").endswith("List") else found

    def pods(
        self, selector: dict[str, str] | None = None, namespace: str = NAMESPACE
    ) -> list[dict[str, Any]]:
        label = ",".join(f"{k}={v}" for k, v in (selector or {}).items())
        return self.kubectl(f"get pods -l '{label}'" if label else "get pods", namespace=namespace)

    def node(self, name: str) -> dict[str, Any]:
        return self.kubectl(f"get node {name}")


def _kubectl_text(args: list[str]) -> str:
    proc = subprocess.run(["kubectl", "--kubeconfig", kubeconfig(), *args], capture_output=True, text=True)
    return proc.stdout + proc.stderr


def platform_pod(pod: dict[str, Any]) -> bool:
    """A long-running pod of the platform: not a finished (hook) pod, not a task pod."""
    finished = pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
    task = "kubernetes_pod_operator" in (pod["metadata"].get("labels") or {})
    return not finished and not task


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )


class Airflow:
    """Airflow 3 REST API: JWT from POST /auth/token (the FAB auth manager the official chart
    configures; the chart's create-user job makes `admin` with kind-up's generated password)."""

    def __init__(self, base: str, username: str, password: str) -> None:
        import requests

        self.base = base
        self.session = requests.Session()
        r = self.session.post(
            f"{base}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        assert r.status_code in (200, 201), f"POST /auth/token: HTTP {r.status_code} {r.text[:300]}"
        self.session.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def get(self, path: str, **kw: Any) -> Any:
        return self.session.get(f"{self.base}/api/v2{path}", timeout=30, **kw)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.session.post(f"{self.base}/api/v2{path}", json=body, timeout=30)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.session.patch(f"{self.base}/api/v2{path}", json=body, timeout=30)

    def wait_dag(self, dag_id: str, timeout: float = 300) -> dict[str, Any]:
        def listed() -> Any:
            r = self.get(f"/dags/{dag_id}")
            return r.json() if r.status_code == 200 else None

        return wait_for(f"DAG {dag_id} listed by the API", listed, timeout)

    def unpause(self, dag_id: str) -> None:
        self.wait_dag(dag_id)
        r = self.patch(f"/dags/{dag_id}", {"is_paused": False})
        assert r.status_code == 200, f"unpause {dag_id}: HTTP {r.status_code} {r.text[:300]}"

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> Any:
        """POST a DAG run (returns the response: tests check 400s themselves)."""
        return self.post(f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        r = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        r = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        assert r.status_code == 200, r.text
        return r.json()["task_instances"]

    def wait_run(
        self, dag_id: str, run_id: str, timeout: float, on_poll: Callable[[], None] | None = None
    ) -> str:
        """Wait until the run finishes; print task states as they change; return the final state."""
        seen: dict[str, str] = {}

        def finished() -> str | None:
            if on_poll:
                on_poll()
            for ti in self.task_instances(dag_id, run_id):
                state = f"{ti['state']} (try {ti.get('try_number')})"
                if seen.get(ti["task_id"]) != state:
                    seen[ti["task_id"]] = state
                    log(f"{dag_id} {ti['task_id']}: {state}")
            state = self.run(dag_id, run_id)["state"]
            return state if state in ("success", "failed") else None

        return wait_for(f"{dag_id} run {run_id}", finished, timeout, interval=5)

    def failure_report(self, dag_id: str, run_id: str) -> str:
        lines = [f"{dag_id} {run_id}:"]
        for ti in self.task_instances(dag_id, run_id):
            lines.append(f"  {ti['task_id']}: {ti['state']} try {ti.get('try_number')}")
            if ti["state"] in ("failed", "upstream_failed", "up_for_retry"):
                r = self.get(
                    f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/{max(ti.get('try_number') or 1, 1)}",
                    params={"full_content": "true"},
                    headers={"Accept": "text/plain"},
                )
                lines.append("    " + r.text[-3000:].replace("\n", "\n    "))
        return "\n".join(lines)


class PodWatcher:
    """Records every pod of a DAG seen while polling (KubernetesPodOperator deletes succeeded pods)."""

    def __init__(self, kube: Kube, dag_id: str) -> None:
        self.kube = kube
        self.dag_id = dag_id
        self.seen: dict[str, dict[str, Any]] = {}

    def poll(self) -> None:
        for pod in self.kube.pods(selector={"dag_id": self.dag_id}):
            self.seen[pod["metadata"]["name"]] = pod

    def by_task(self, task_id: str) -> list[dict[str, Any]]:
        return [p for p in self.seen.values() if p["metadata"].get("labels", {}).get("task_id") == task_id]


def git_env(key: Path, known_hosts: Path) -> dict[str, str]:
    ssh = (
        f"ssh -i {key} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes "
        f"-o UserKnownHostsFile={known_hosts} -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=15"
    )
    return {
        **os.environ,
        "GIT_SSH_COMMAND": ssh,
        "GIT_AUTHOR_NAME": "kind-test",
        "GIT_AUTHOR_EMAIL": "kind-test@mlops.local",
        "GIT_COMMITTER_NAME": "kind-test",
        "GIT_COMMITTER_EMAIL": "kind-test@mlops.local",
    }


def git(*args: str, env: dict[str, str], cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout
