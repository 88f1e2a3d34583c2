"""The Docker engine of the container tier and `docker run` built from Kubernetes pod specs.

`scripts/docker-engine run` starts a private engine (Debian's docker.io, its own socket and
directories under .docker/ and /tmp) and exports DOCKER_HOST and DOCKER; `scripts/images-build`
builds the images into it first. Every container of these tests runs with --network host, so a
server in it listens on 127.0.0.1 of this machine and nothing else is reachable or addressed;
each one carries the label mlops.test=docker-tier and is removed by the test that started it
(and by the engine's shutdown at the end of `make test-docker`, whatever happened).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import paths
from tests.support.processes import wait_ready
from tests.support.registry import images_refs

LABEL = "mlops.test=docker-tier"
REPORT = Path(os.environ.get("IMAGES_CACHE", paths.REPO / ".cache" / "images")) / "report.tsv"
IMAGES = ("airflow", "git-server", "mlflow", "trainer")


@functools.lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """The names `make test-docker` builds the images as: those values/kind.yaml gives them
    (scripts/images-refs renders the chart), git-server's fixed one."""
    refs = images_refs()
    return {**refs.refs([paths.VALUES_DIR / "kind.yaml"]), **refs.FIXED}


def image(name: str) -> str:
    return _names()[name]


def docker_cli() -> str:
    return os.environ.get("DOCKER") or ("/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker")


def docker(*args: str, check: bool = True, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [docker_cli(), *args], capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"docker {shlex.join(args)[:300]}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return proc


def engine_answers() -> bool:
    if not os.environ.get("DOCKER_HOST"):
        return False
    try:
        return docker("version", "--format", "{{.Server.Version}}", check=False, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class Run:
    """`docker run` arguments for one container of a pod spec, as the kubelet would run it."""

    image: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    group_add: list[int] = field(default_factory=list)
    read_only: bool = False
    cap_drop_all: bool = False
    no_new_privileges: bool = False
    mounts: list[tuple[str, str, bool]] = field(default_factory=list)  # host, container, read-only
    tmpfs: list[str] = field(default_factory=list)
    workdir: str | None = None

    def args(self) -> list[str]:
        out = ["--network", "host", "--label", LABEL, "--entrypoint", self.argv[0]]
        if self.user:
            out += ["--user", self.user]
        for gid in self.group_add:
            out += ["--group-add", str(gid)]
        if self.read_only:
            out.append("--read-only")
        if self.cap_drop_all:
            out += ["--cap-drop", "ALL"]
        if self.no_new_privileges:
            out += ["--security-opt", "no-new-privileges"]
        for host, target, ro in self.mounts:
            out += ["-v", f"{host}:{target}{':ro' if ro else ''}"]
        for t in self.tmpfs:
            out += ["--tmpfs", t]
        for k, v in self.env.items():
            out += ["-e", f"{k}={v}"]
        if self.workdir:
            out += ["-w", self.workdir]
        return [*out, self.image, *self.argv[1:]]


def from_pod(
    pod_spec: dict[str, Any],
    container: dict[str, Any],
    image_ref: str,
    volumes: dict[str, Path],
    *,
    argv: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """The container of a pod spec as `docker run` options: its user and group (pod and
    container security contexts), read-only root filesystem, dropped capabilities,
    no-new-privileges, env values, and its volume mounts: any
    other volume the host directory given for its name in `volumes` (a KeyError names a volume
    the test did not provide); an emptyDir not given there gets a fresh writable directory."""
    psc = pod_spec.get("securityContext") or {}
    csc = container.get("securityContext") or {}
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    gid = csc.get("runAsGroup", psc.get("runAsGroup"))
    user = None if uid is None else (f"{uid}:{gid}" if gid is not None else str(uid))
    kinds = {v["name"]: v for v in pod_spec.get("volumes") or []}
    mounts, tmpfs = [], []
    for m in container.get("volumeMounts") or []:
        vol = kinds[m["name"]]
        if "emptyDir" in vol and m["name"] not in volumes:
            # A host directory, not --tmpfs: this engine (runc 1.1 on cgroup v1) mounts a tmpfs
            # root-owned 0755 whatever mode= says, where the kubelet's emptyDir is writable by
            # the pod's user (fsGroup).
            host = Path(tempfile.mkdtemp(prefix=f"emptydir-{m['name']}-", dir=scratch_dir()))
            host.chmod(0o1777)
            mounts.append((str(host), m["mountPath"], False))
        else:
            host = volumes[m["name"]]
            sub = m.get("subPath") or _expand(m.get("subPathExpr", ""), container)
            if sub:
                host = host / sub
                host.mkdir(parents=True, exist_ok=True)  # the kubelet creates the sub-path
                host.chmod(0o777)
            mounts.append((str(host), m["mountPath"], bool(m.get("readOnly"))))
    values = {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}
    values.update(env or {})
    caps = (csc.get("capabilities") or {}).get("drop") or []
    return Run(
        image=image_ref,
        argv=argv or [*(container.get("command") or []), *(container.get("args") or [])],
        env=values,
        user=user,
        group_add=[psc["fsGroup"]] if "fsGroup" in psc else [],
        read_only=bool(csc.get("readOnlyRootFilesystem")),
        cap_drop_all="ALL" in caps,
        no_new_privileges=csc.get("allowPrivilegeEscalation") is False,
        mounts=mounts,
        tmpfs=tmpfs,
        workdir=container.get("workingDir"),
    )


_SCRATCH: list[Path] = []


def scratch_dir() -> Path:
    """One temporary directory for the emptyDir volumes of this session (removed by conftest)."""
    if not _SCRATCH:
        _SCRATCH.append(Path(tempfile.mkdtemp(prefix="mlops-docker-tier-")))
    return _SCRATCH[0]


def remove_scratch() -> None:
    import shutil

    for d in _SCRATCH:
        shutil.rmtree(d, ignore_errors=True)
    _SCRATCH.clear()


def _expand(expr: str, container: dict[str, Any]) -> str:
    """subPathExpr: $(VAR) from the container's env values."""
    values = {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: values[m.group(1)], expr)


def run_once(run: Run, timeout: float = 300) -> subprocess.CompletedProcess:
    """`docker run --rm` to completion (a task pod)."""
    return docker("run", "--rm", *run.args(), check=False, timeout=timeout)


@contextlib.contextmanager
def serving(run: Run, ready: Callable[[], bool], name: str, timeout: float = 120) -> Iterator[str]:
    """A detached container until `ready()`; always removed. Yields its id; on failure the
    error carries the container's log."""
    cid = docker("run", "-d", "--name", name, *run.args()).stdout.strip()

    def stopped() -> str | None:
        state = docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", cid, check=False).stdout
        return None if state.startswith("running") else f"container {name} stopped ({state.strip()})"

    try:
        wait_ready(ready, stopped, timeout, f"container {name}", lambda: logs(cid), interval=0.5)
        yield cid
    finally:
        docker("rm", "-f", cid, check=False, timeout=60)


def logs(cid: str) -> str:
    proc = docker("logs", "--tail", "60", cid, check=False)
    return (proc.stdout + proc.stderr)[-6000:]


def read_report() -> dict[str, dict[str, str]]:
    """scripts/images-build's report: image -> ref, build seconds, bytes, base, standin."""
    out = {}
    if REPORT.exists():
        for line in REPORT.read_text().splitlines():
            name, ref, secs, size, base, kind = line.split("\t")
            out[name] = {"ref": ref, "seconds": secs, "bytes": size, "base": base, "kind": kind}
    return out
