"""A local Kubernetes control plane for tests (the control-plane tier, tests/cluster).

kwok nodes run no containers: the control plane is real (etcd, kube-apiserver with TLS,
Node,RBAC authorization, ServiceAccount tokens and PodSecurity admission, kube-controller-manager,
kube-scheduler), the nodes and the lifecycle of their pods are simulated by kwok
(scripts/cluster-up prints what is simulated). Anything that needs a running container stays
with the process tests.

Use it through the session fixture ``cluster`` of tests/cluster/conftest.py::

    def test_something(cluster):
        cluster.kubeconfig                  # Path of the admin kubeconfig (system:masters)
        cluster.api                         # kubernetes.client.ApiClient for that kubeconfig
        cluster.core, cluster.apps, cluster.batch, cluster.rbac, cluster.storage,
        cluster.networking, cluster.auth    # the typed APIs (CoreV1Api, AppsV1Api, ...)
        cluster.helm("upgrade", "--install", "mlops", CHART, "-n", "mlops", "--create-namespace",
                     "--wait", "-f", VALUES)  # ./bin/helm with KUBECONFIG set; CompletedProcess,
                                            # raises HelmError (with stdout/stderr) unless check=False
        cluster.namespace("name", labels={...})  # create a namespace (deleted at session end)
        cluster.wait_for("what", predicate, timeout=60)  # poll until predicate() is truthy
        cluster.diagnostics(namespace)      # pods, their phases and the namespace's events (text)
        cluster.component_log("kube-apiserver")  # tail of a component's log

``start_cluster()`` runs scripts/cluster-up once (it reuses a healthy control plane of the same
state directory) and registers the teardown with atexit; ``Cluster.stop()`` runs
scripts/cluster-down. The fixture stops the control plane at the end of the session, after
failures too; ``MLOPS_CLUSTER_KEEP=1`` keeps it running (the next session reuses it).

State: one directory per pytest session, ``.cluster/tests-<pid>``, removed (logs included) when
the session stops its control plane, so concurrent sessions in one checkout (several engineers,
or `make test` beside a single test file) never restart or stop each other's control plane. A
session holds ``<dir>/session.lock`` (flock) while it lives; a directory whose lock is free was
left by a killed session: the next session stops its processes (cluster-down) and removes it.
``MLOPS_CLUSTER_KEEP=1`` uses the shared ``.cluster/tests`` instead (kept, reused by the next
KEEP session) while no other session holds it (``.cluster/tests.session.lock``), else a
per-session directory. Ports: 26450-26454 on 127.0.0.1 when free, else another free range (or
``MLOPS_CLUSTER_PORT_BASE``); the choice and cluster-up run under ``.cluster/tests-ports.lock``
so two sessions of this checkout never pick the same range, and a range taken meanwhile by
another checkout is replaced by a fresh one. Apart from ``make cluster-up``'s ``.cluster/local``
(26440-26444), so the tests never touch a developer's cluster.

One real node, ``mlops-real-0`` (scripts/cluster/realnode.py: kubelet, containerd, CNI,
kube-proxy, CoreDNS), runs real containers for the pods that tolerate and select
``mlops.test/real-node=true`` (tests/cluster/test_real_node.py); ``CLUSTER_REAL_NODE=0`` leaves
it out.

The kwok nodes: ``kwok-cpu-0``, ``kwok-cpu-1`` and ``kwok-gpu-0``, ``kwok-gpu-1`` (label
``nvidia.com/gpu.present=true``, taint ``nvidia.com/gpu=present:NoSchedule``, allocatable
``nvidia.com/gpu: 8``). Pod lifecycle (tools/control-plane/kwok/stages.yaml): restartPolicy
Always pods Running and Ready; Never/OnFailure pods (Jobs, hooks, task pods) Succeeded after
``JOB_POD_DELAY_MS`` or the pod annotation ``mlops.test/kwok-delay`` (e.g. "30s");
``mlops.test/kwok-fail: "true"`` fails a pod (exit code 1); ``mlops.test/kwok-complete: "false"``
keeps a run-to-completion pod Running. Storage classes ``standard`` (default), ``mlops-shared``,
``nfs-client``: no provisioner, a pool of static Retain PVs per class (``sim-<class>-<n>``).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.support.paths import REPO

SCRIPTS = REPO / "scripts"
BIN = REPO / "bin"
STATE_ROOT = REPO / ".cluster"
TEST_STATE_DIR = STATE_ROOT / "tests"  # shared, only with MLOPS_CLUSTER_KEEP=1
SESSION_PREFIX = "tests-"  # per-session state directories: .cluster/tests-<pid>
SESSION_LOCK = "session.lock"
PORTS_LOCK = STATE_ROOT / "tests-ports.lock"
TEST_PORT_BASE = 26450
JOB_POD_DELAY_MS = 1000
KEEP_ENV = "MLOPS_CLUSTER_KEEP"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

T = TypeVar("T")


class ClusterError(RuntimeError):
    """scripts/cluster-up or cluster-down failed; the message is their output."""


class HelmError(AssertionError):
    """helm exited non-zero; the message holds the command, its stdout and stderr."""


def script_env(state_dir: Path, port_base: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CLUSTER_DIR=str(state_dir),
        CLUSTER_PORT_BASE=str(port_base),
        CLUSTER_JOB_POD_DELAY_MS=str(JOB_POD_DELAY_MS),
    )
    env.update(extra)
    return env


def run_script(name: str, state_dir: Path, port_base: int, timeout: float = 180, **extra: str):
    """Run scripts/<name> for a state directory; CompletedProcess (text), never raises on exit code."""
    return subprocess.run(
        [str(SCRIPTS / name)],
        env=script_env(state_dir, port_base, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Cluster:
    state_dir: Path
    port_base: int
    kubeconfig: Path
    up_output: str = ""
    up_seconds: float = 0.0
    remove_state: bool = False  # a per-session directory: removed after cluster-down
    keep: bool = False  # MLOPS_CLUSTER_KEEP=1 with the shared .cluster/tests: left running
    _api: Any = field(default=None, repr=False)
    _namespaces: list[str] = field(default_factory=list, repr=False)
    _stopped: bool = field(default=False, repr=False)
    _lock_fd: int | None = field(default=None, repr=False)

    # --- clients ---------------------------------------------------------------------------
    @property
    def api(self):
        """kubernetes.client.ApiClient authenticated as the cluster administrator."""
        if self._api is None:
            from kubernetes import config

            self._api = config.new_client_from_config(config_file=str(self.kubeconfig))
        return self._api

    def _typed(self, name: str):
        from kubernetes import client

        return getattr(client, name)(self.api)

    @property
    def core(self):
        return self._typed("CoreV1Api")

    @property
    def apps(self):
        return self._typed("AppsV1Api")

    @property
    def batch(self):
        return self._typed("BatchV1Api")

    @property
    def rbac(self):
        return self._typed("RbacAuthorizationV1Api")

    @property
    def storage(self):
        return self._typed("StorageV1Api")

    @property
    def networking(self):
        return self._typed("NetworkingV1Api")

    @property
    def auth(self):
        return self._typed("AuthorizationV1Api")

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port_base}"

    # --- helpers ---------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """Environment for tools run against this cluster (KUBECONFIG, helm homes in the checkout)."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        for var, sub in (("HELM_CONFIG_HOME", "config"), ("HELM_CACHE_HOME", "cache"), ("HELM_DATA_HOME", "data")):
            env.setdefault(var, str(REPO / ".helm" / sub))
        return env

    def helm(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run the pinned ./bin/helm against this cluster (KUBECONFIG set); text output."""
        helm = BIN / "helm"
        if not helm.exists():
            raise HelmError("./bin/helm is missing: run `make tools`")
        proc = subprocess.run(
            [str(helm), *args], env=self.env(), capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise HelmError(
                f"helm {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        """Create a namespace (kept if it exists); deleted when the cluster stops."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels or {}))
        try:
            self.core.create_namespace(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            if labels:
                self.core.patch_namespace(name, {"metadata": {"labels": labels}})
        self._namespaces.append(name)
        return name

    def wait_for(self, what: str, predicate: Callable[[], T], timeout: float = 60, interval: float = 0.5) -> T:
        """Poll predicate() until it returns something truthy; AssertionError naming `what` after timeout."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                result = predicate()
                if result:
                    return result
            except Exception as exc:  # keep polling: objects appear, the API may be busy
                last_error = exc
            if time.monotonic() > deadline:
                detail = f" (last error: {last_error})" if last_error else ""
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
            time.sleep(interval)

    def component_log(self, component: str, lines: int = 40) -> str:
        path = self.state_dir / "logs" / f"{component}.log"
        if not path.exists():
            return f"(no log {path})"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def diagnostics(self, namespace: str) -> str:
        """Pods (phase, node, reason) and the events of a namespace, for assertion messages."""
        out = [f"--- pods in {namespace}"]
        try:
            for pod in self.core.list_namespaced_pod(namespace).items:
                out.append(
                    f"{pod.metadata.name}: {pod.status.phase} node={pod.spec.node_name} "
                    f"reason={pod.status.reason} conditions="
                    + ",".join(f"{c.type}={c.status}" for c in (pod.status.conditions or []))
                )
            out.append(f"--- events in {namespace}")
            for ev in self.core.list_namespaced_event(namespace).items[-30:]:
                out.append(f"{ev.type} {ev.reason} {ev.involved_object.kind}/{ev.involved_object.name}: {ev.message}")
        except Exception as exc:
            out.append(f"(cannot list: {exc})")
        return "\n".join(out)

    def stop(self) -> None:
        """scripts/cluster-down (idempotent); namespaces go with the etcd data. A per-session
        state directory is removed afterwards and its session lock released."""
        if self._stopped:
            return
        self._stopped = True
        # 300 s: the real node stops its containers first (SIGTERM, then SIGKILL after their grace)
        proc = run_script("cluster-down", self.state_dir, self.port_base, timeout=300)
        if proc.returncode != 0:
            raise ClusterError(f"cluster-down failed:\n{proc.stdout}{proc.stderr}")
        if self.remove_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        _release(self._lock_fd)
        self._lock_fd = None


def ports_free(base: int, count: int = 6) -> bool:
    """The control plane's 5 ports and the tier registry's (base + 5, the real node pulls there) are free."""
    socks = []
    try:
        for port in range(base, base + count):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port_base() -> int:
    """The first of 6 consecutive free ports on 127.0.0.1 (5 of the control plane, the tier
    registry's), below the ephemeral range."""
    for _ in range(200):
        base = random.randrange(20000, 32000)
        if ports_free(base):
            return base
    raise ClusterError("no 6 consecutive free ports on 127.0.0.1")


def choose_port_base(state_dir: Path) -> int:
    """MLOPS_CLUSTER_PORT_BASE; else the ports of a control plane still running in state_dir
    (kept by MLOPS_CLUSTER_KEEP=1: reused); else TEST_PORT_BASE when free; else a free range
    (another checkout's tests may hold the default)."""
    if os.environ.get("MLOPS_CLUSTER_PORT_BASE"):
        return int(os.environ["MLOPS_CLUSTER_PORT_BASE"])
    stamp = state_dir / "cluster.stamp"
    pid_file = state_dir / "run" / "kube-apiserver.pid"
    if stamp.exists() and pid_file.exists():
        match = re.search(r"ports=(\d+)", stamp.read_text())
        if match and Path(f"/proc/{pid_file.read_text().strip()}").exists():
            return int(match.group(1))
    return TEST_PORT_BASE if ports_free(TEST_PORT_BASE) else free_port_base()


def _lock(path: Path, blocking: bool, timeout: float = 600) -> int | None:
    """An exclusive flock on path (created): the fd, or None when not blocking and it is held.
    The fd is not inherited by the processes we start (Python fds are non-inheritable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if not blocking:
                os.close(fd)
                return None
            if time.monotonic() > deadline:
                os.close(fd)
                raise ClusterError(f"{path} still locked after {timeout:.0f}s: is a cluster-up hanging?") from None
            time.sleep(0.2)


def _release(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)  # closing the fd releases the flock
        except OSError:
            pass


def _stamp_port(state_dir: Path) -> int:
    stamp = state_dir / "cluster.stamp"
    match = re.search(r"ports=(\d+)", stamp.read_text()) if stamp.exists() else None
    return int(match.group(1)) if match else TEST_PORT_BASE


def reap_stale_session_dirs(root: Path = STATE_ROOT) -> list[Path]:
    """Per-session state directories whose session is gone (its session.lock is free: the pytest
    process was killed before its teardown): stop their processes (cluster-down) and remove
    them. Returns the directories removed; live sessions' directories are untouched."""
    removed = []
    if not root.is_dir():
        return removed
    for state_dir in sorted(root.glob(SESSION_PREFIX + "*")):
        if not state_dir.is_dir() or not state_dir.name[len(SESSION_PREFIX):].isdigit():
            continue
        fd = _lock(state_dir / SESSION_LOCK, blocking=False)
        if fd is None:
            continue  # a live session
        try:
            proc = run_script("cluster-down", state_dir, _stamp_port(state_dir), timeout=120)
            if proc.returncode == 0:
                shutil.rmtree(state_dir, ignore_errors=True)
                removed.append(state_dir)
        finally:
            _release(fd)
    return removed


def session_state_dir() -> tuple[Path, int, bool]:
    """(state directory, fd of its held session lock, shared) for this session:
    .cluster/tests-<pid> (shared False: stopped and removed at the end); with
    MLOPS_CLUSTER_KEEP=1 the shared .cluster/tests (kept running) when no other session holds it."""
    if os.environ.get(KEEP_ENV):
        fd = _lock(STATE_ROOT / (TEST_STATE_DIR.name + ".session.lock"), blocking=False)
        if fd is not None:
            return TEST_STATE_DIR, fd, True
        print(f"{TEST_STATE_DIR} is used by another session: this one runs (and stops) its own control plane")
    state_dir = STATE_ROOT / f"{SESSION_PREFIX}{os.getpid()}"
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = _lock(state_dir / SESSION_LOCK, blocking=False)
    if fd is None:  # cannot happen for our own pid unless started twice in this process
        raise ClusterError(f"{state_dir} is locked by another session")
    return state_dir, fd, False


def start_cluster(state_dir: Path | None = None, port_base: int | None = None,
                  register_atexit: bool = True) -> Cluster:
    """scripts/cluster-up for state_dir (reuses a healthy control plane); ClusterError on failure.
    state_dir: default session_state_dir() (per session, see the module docstring); port_base:
    see choose_port_base()."""
    missing = [b for b in BINARIES if not (BIN / b).exists()]
    if missing:
        raise ClusterError(f"{', '.join(missing)} missing in ./bin: run `make cluster-tools`")
    lock_fd, remove_state, keep = None, False, bool(os.environ.get(KEEP_ENV))
    started = time.monotonic()
    # one session of this checkout at a time reaps, creates its directory, picks ports, starts
    ports_fd = _lock(PORTS_LOCK, blocking=True)
    try:
        if state_dir is None:
            reap_stale_session_dirs()
            state_dir, lock_fd, shared = session_state_dir()
            remove_state, keep = not shared, shared
        fixed = port_base is not None or bool(os.environ.get("MLOPS_CLUSTER_PORT_BASE"))
        if port_base is None:
            port_base = choose_port_base(state_dir)
        for _attempt in range(3):
            proc = run_script("cluster-up", state_dir, port_base, timeout=300)
            # another checkout took the range between our check and cluster-up: take another
            if proc.returncode == 0 or fixed or "is in use" not in proc.stderr:
                break
            port_base = free_port_base()
    finally:
        _release(ports_fd)
    if proc.returncode != 0:
        if remove_state:
            shutil.rmtree(state_dir, ignore_errors=True)
        _release(lock_fd)
        raise ClusterError(f"cluster-up failed: {proc.stderr.strip()}\n{proc.stdout}")
    cluster = Cluster(
        state_dir=state_dir,
        port_base=port_base,
        kubeconfig=state_dir / "kubeconfig",
        up_output=proc.stdout,
        up_seconds=time.monotonic() - started,
        remove_state=remove_state,
        keep=keep,
        _lock_fd=lock_fd,
    )
    if register_atexit and not keep:
        atexit.register(_stop_quietly, cluster)
        _stop_on_sigterm()
    return cluster


def _stop_quietly(cluster: Cluster) -> None:
    try:
        cluster.stop()
    except Exception as exc:  # at exit: report, never raise
        print(f"cluster teardown: {exc}")


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _stop_on_sigterm() -> None:
    """SIGTERM (CI cancelling the job) stops the session like Ctrl-C: pytest tears the fixtures
    down (the control plane stops) instead of dying with the processes left running."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def cluster_fixture(scope: str = "session"):
    """A pytest fixture (put it in a conftest as ``cluster = cluster_fixture()``) yielding a
    started Cluster and stopping it afterwards, after failures too (unless MLOPS_CLUSTER_KEEP=1
    runs it in the shared .cluster/tests)."""
    import pytest

    @pytest.fixture(scope=scope, name="cluster")
    def _cluster() -> Iterator[Cluster]:
        try:
            cluster = start_cluster()
        except ClusterError as exc:
            pytest.fail(str(exc), pytrace=False)
        print(f"\ncontrol plane up in {cluster.up_seconds:.1f}s ({cluster.state_dir})")
        try:
            yield cluster
        finally:
            if not cluster.keep:
                cluster.stop()

    return _cluster
