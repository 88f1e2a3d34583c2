"""scripts/kind-up run end to end with stand-ins for docker, kind, kubectl and helm, twice.

Checks the script itself (order of the steps, arguments, bash errors) and its idempotency: the
second run must reuse the cluster, the Secrets, the keys and the git repository. The stand-ins
(tests/scripts/kind_standin.py, a test double: no Docker engine or cluster here) let real tools
do every part that can run here: the real kubectl builds the Secrets and evaluates kind-up's
templates offline, the real helm renders the platform layer, footprint.py / shared_volumes.py
run on that render, scripts/gitsync-bootstrap makes the deploy key, and dags/ is pushed over SSH
to the real git-server entrypoint (sshd on 127.0.0.1) with the host key pinned from the Secret.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import paths
from tests.support.helm import chart_path

STANDIN = Path(__file__).with_name("kind_standin.py")
TOOLS = ("docker", "kind", "kubectl", "helm")

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("kubectl", "sshd", "ssh-keygen", "git", "openssl")),
        reason="needs kubectl (offline use), sshd, ssh-keygen, git and openssl",
    ),
]


def _calls(state: Path) -> list[dict]:
    return [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]


@pytest.fixture
def env(tmp_path: Path):
    state = tmp_path / "standin"
    state.mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in TOOLS:
        wrapper = bindir / tool
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" {tool} "$@"\n')
        wrapper.chmod(0o755)
    chart = tmp_path / "chart" / "airflow-mlops"
    chart.mkdir(parents=True)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    environment = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "STANDIN": str(state),
        "STANDIN_REAL_KUBECTL": shutil.which("kubectl"),
        "STANDIN_REAL_HELM": paths.helm_binary(),
        "STANDIN_UMBRELLA_CHART": str(chart_path()),
        "STANDIN_GIT_ENTRYPOINT": str(paths.IMAGES_DIR / "git-server" / "entrypoint.sh"),
        "MLOPS_KIND_STATE_DIR": str(tmp_path / "kind-state"),
        "MLOPS_KIND_SHARED_DIR": str(tmp_path / "shared"),
        "MLOPS_KIND_PYTHON": sys.executable,
        "MLOPS_KIND_CHART": str(chart),
        "MLOPS_KIND_PUSH_USER": user,
        "MLOPS_KIND_PUSH_REPO_PATH": str(state / "git-server" / "srv" / "git" / "platform.git"),
        "HOME": str(tmp_path),
    }
    yield environment, state, tmp_path
    info = state / "git-server.json"
    if info.exists():
        try:
            os.killpg(json.loads(info.read_text())["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass


def _kind_up(environment: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(paths.SCRIPTS_DIR / "kind-up")], env=environment, capture_output=True, text=True, timeout=300
    )


def test_kind_up_twice(env) -> None:
    environment, state, tmp = env
    first = _kind_up(environment)
    out = first.stdout + first.stderr
    assert first.returncode == 0, out
    steps = [
        "preflight",
        "cluster",
        "nodes",
        "ingress",
        "images",
        "secrets",
        "git-server",
        "git-push",
        "chart",
        "volumes",
        "install",
        "finished",
    ]
    positions = [out.index(f"== {s}:") for s in steps]
    assert positions == sorted(positions), "steps out of order"
    calls = _calls(state)

    # cluster from the rendered config (shared directory substituted), then the GPU node
    created = [c for c in calls if c["tool"] == "kind" and c["args"][:2] == ["create", "cluster"]]
    assert len(created) == 1
    cluster = json.loads((state / "cluster.json").read_text())
    assert cluster["nodes"][0]["extraMounts"][0]["hostPath"] == str(tmp / "shared")
    assert json.loads((state / "gpu.json").read_text()) == {"mlops-worker": "8"}
    taints = json.loads((state / "taints.json").read_text())
    assert taints == {"mlops-control-plane": [], "mlops-worker": ["nvidia.com/gpu"]}
    # every image built and loaded under its contract name
    images = sorted(p.parent.name for p in paths.IMAGES_DIR.glob("*/Dockerfile"))
    built = sorted(c["args"][c["args"].index("-t") + 1] for c in calls if c["args"][:1] == ["build"])
    assert built == [f"mlops.local/{n}:dev" for n in images]
    loaded = sorted(
        c["args"][2] for c in calls if c["tool"] == "kind" and c["args"][:2] == ["load", "docker-image"]
    )
    assert loaded == built
    # the model servers' namespace exists and enforces Pod Security "restricted"
    assert {"mlops", "mlops-serving"} <= set(json.loads((state / "namespaces.json").read_text()))
    ns_labels = json.loads((state / "namespace-labels.json").read_text())
    assert ns_labels["mlops-serving"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # Secrets: values/kind.yaml's, the git server's, the deploy key (by the bootstrap)
    secrets = {p.name for p in (state / "secrets").iterdir()}
    assert {
        "mlops-dev-database",
        "mlops-airflow-metadata",
        "mlops-git-ssh",
        "git-server-host-keys",
        "git-server-authorized-keys",
        "git-server-pusher",
    } <= secrets
    # dags/ reached the git server over SSH
    bare = state / "git-server" / "srv" / "git" / "platform.git"
    files = subprocess.run(
        ["git", "--git-dir", str(bare), "ls-tree", "-r", "--name-only", "main"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert "dags/ml_training.py" in files and all(f.startswith("dags/") for f in files)
    # helm got values/kind.yaml, the generated values and the known_hosts pinned from the Secret
    upgrade = json.loads((state / "helm-upgrade.json").read_text())
    assert str(paths.VALUES_DIR / "kind.yaml") in upgrade["args"]
    host_pub = (state / "secrets" / "git-server-host-keys" / "ssh_host_ed25519_key.pub").read_text().split()
    assert upgrade["knownHosts"] == f"git-server.mlops.svc.cluster.local {host_pub[0]} {host_pub[1]}\n"
    # the shared volumes for the claims of class mlops-shared, and the git server manifests
    applied = {(a["kind"], a["name"]) for a in json.loads((state / "applied.json").read_text())}
    assert ("StorageClass", "mlops-shared") in applied
    assert any(k == "PersistentVolume" for k, _ in applied)
    assert {("Deployment", "git-server"), ("Service", "git-server")} <= applied
    assert "kind footprint: fits" in out
    assert "platform up in" in out
    _assert_port_forwards_stopped(state)

    # --- second run: everything reused ---
    (state / "calls.jsonl").write_text("")
    authorized_before = (state / "secrets" / "git-server-authorized-keys" / "authorized_keys").read_text()
    commits_before = _count_commits(bare)
    second = _kind_up(environment)
    out2 = second.stdout + second.stderr
    assert second.returncode == 0, out2
    calls2 = _calls(state)
    assert "cluster exists: reusing it" in out2
    assert not [c for c in calls2 if c["tool"] == "kind" and c["args"][:2] == ["create", "cluster"]]
    assert not [c for c in calls2 if c["tool"] == "kubectl" and "patch" in c["args"]], (
        "GPU capacity re-patched"
    )
    assert "ingress-nginx installed: reusing it" in out2
    assert not [
        c
        for c in calls2
        if c["tool"] == "kubectl" and c["args"][:1] == ["apply"] and "https://" in " ".join(c["args"])
    ]
    assert "deploy key: reusing Secret mlops-git-ssh" in out2
    assert "authorized keys unchanged" in out2
    assert (
        state / "secrets" / "git-server-authorized-keys" / "authorized_keys"
    ).read_text() == authorized_before
    assert "already holds this dags/" in out2
    assert _count_commits(bare) == commits_before
    created2 = [
        c["args"][3]
        for c in calls2
        if c["tool"] == "kubectl"
        and "generic" in c["args"]
        and "--dry-run=client" not in c["args"]
        and "create" in c["args"]
    ]
    assert created2 == [], f"Secrets created again: {created2}"
    assert json.loads((state / "helm-upgrade.json").read_text())["knownHosts"] == upgrade["knownHosts"]
    _assert_port_forwards_stopped(state)


def _assert_port_forwards_stopped(state: Path) -> None:
    """kind-up stops the port-forward it started (no kubectl left behind)."""
    pids = [int(p) for p in (state / "port-forward.pids").read_text().split()]
    assert pids
    deadline = time.monotonic() + 10
    for pid in pids:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"kubectl port-forward (pid {pid}) still running after kind-up")
            time.sleep(0.2)


def _count_commits(bare: Path) -> int:
    out = subprocess.run(
        ["git", "--git-dir", str(bare), "rev-list", "--count", "main"], capture_output=True, text=True
    )
    return int(out.stdout.strip())
