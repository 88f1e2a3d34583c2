"""Bad input and process hygiene of scripts/cluster-up, cluster-down and cluster-tools.

kwok nodes run no containers. These tests start their own control planes in temporary state
directories on free ports (apart from the session's), and check after each failure that no
process of that state directory is left running.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.support.cluster import BIN, SCRIPTS, free_port_base, run_script

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def processes_of(state_dir: Path) -> list[str]:
    """Command lines of the live processes that have state_dir on their command line."""
    marker = str(state_dir.resolve()) + "/"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        exe = cmdline.split(" ", 1)[0].rsplit("/", 1)[-1]
        if marker in cmdline and exe in COMPONENTS:
            found.append(f"{proc.name}: {cmdline[:150]}")
    return found


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    return lines[0]


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A temporary state directory and a free port range; every process of it is stopped afterwards.
    Kwok nodes only: the real node's own start, crash and cleanup are tests/cluster/test_real_node.py's."""
    monkeypatch.setenv("CLUSTER_REAL_NODE", "0")
    state_dir = tmp_path / "cluster"
    base = free_port_base()
    yield state_dir, base
    run_script("cluster-down", state_dir, base, timeout=60)
    assert processes_of(state_dir) == []


def test_missing_binaries_name_the_target(state, tmp_path):
    state_dir, base = state
    proc = run_script("cluster-up", state_dir, base, CLUSTER_BIN=str(tmp_path / "no-bin"))
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert "make cluster-tools" in line and "kube-apiserver" in line, line
    assert processes_of(state_dir) == []


def test_cluster_tools_without_go_names_what_to_do(tmp_path):
    go = shutil.which("go")
    path = ":".join(p for p in os.environ["PATH"].split(":") if not go or Path(p).resolve() != Path(go).resolve().parent)
    env = dict(os.environ, PATH=path)
    assert shutil.which("go", path=path) is None
    proc = subprocess.run([str(SCRIPTS / "cluster-tools"), "etcd", "v3.6.16", str(tmp_path / "bin")],
                          env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert "Go is required" in line and "make cluster-tools" in line, line


def test_cluster_tools_refuses_a_version_that_disagrees_with_go_mod(tmp_path):
    proc = subprocess.run([str(SCRIPTS / "cluster-tools"), "kubernetes", "v1.35.0", str(tmp_path / "bin")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "change both together" in one_line(proc.stderr)


def test_port_in_use_stops_with_one_line_and_no_process(state):
    state_dir, base = state
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base + 1))  # the etcd client port
        holder.listen()
        proc = run_script("cluster-up", state_dir, base)
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert f"port 127.0.0.1:{base + 1} is in use (pid {os.getpid()}" in line, line
    assert "CLUSTER_PORT_BASE" in line
    assert processes_of(state_dir) == []


def test_deadline_stops_with_one_line_and_no_process(state):
    state_dir, base = state
    proc = run_script("cluster-up", state_dir, base, CLUSTER_READY_TIMEOUT="0")
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert "within 0s" in line and "logs/" in line, line
    assert processes_of(state_dir) == []
    # the log of the component that missed its deadline is kept
    assert any((state_dir / "logs").glob("*.log"))


def test_unknown_scheduler_choice_names_the_key_and_the_choices(state):
    state_dir, base = state
    proc = run_script("cluster-up", state_dir, base, CLUSTER_SCHEDULER="binpack")
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert "CLUSTER_SCHEDULER=binpack" in line and "gpu-packing" in line and "default" in line, line
    assert processes_of(state_dir) == []


def test_the_default_scheduler_choice_runs_the_kube_schedulers_own_defaults(state):
    """CLUSTER_SCHEDULER=default (what `make bench-cluster --scheduler default` measures): no
    scoring override; the default choice (gpu-packing) is what every other test runs."""
    state_dir, base = state
    proc = run_script("cluster-up", state_dir, base, CLUSTER_SCHEDULER="default")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "its own defaults" in proc.stdout
    config = yaml.safe_load((state_dir / "kube-scheduler.yaml").read_text())
    assert "profiles" not in config and config["kind"] == "KubeSchedulerConfiguration", config


def pids(state_dir: Path) -> dict[str, str]:
    return {c: (state_dir / "run" / f"{c}.pid").read_text().strip() for c in COMPONENTS}


def test_stale_state_is_restarted_cleanly_and_foreign_pids_are_left_alone(state):
    state_dir, base = state
    first = run_script("cluster-up", state_dir, base)
    assert first.returncode == 0, first.stderr + first.stdout
    assert "ready in" in first.stdout
    before = pids(state_dir)
    assert len(processes_of(state_dir)) == 5

    # a second run reuses the healthy control plane
    started = time.monotonic()
    again = run_script("cluster-up", state_dir, base)
    assert again.returncode == 0, again.stderr
    assert "reusing the running control plane" in again.stdout
    assert pids(state_dir) == before
    print(f"reuse took {time.monotonic() - started:.1f}s")

    # crash: the scheduler dies, and the controller-manager's pid file is lost while it keeps
    # running (a leftover that would keep a stale cache); the apiserver's pid file names a
    # process that is not ours (this test), which must survive
    os.kill(int(before["kube-scheduler"]), 9)
    (state_dir / "run" / "kube-controller-manager.pid").unlink()
    (state_dir / "run" / "kube-apiserver.pid").write_text(str(os.getpid()))
    time.sleep(0.5)
    restarted = run_script("cluster-up", state_dir, base)
    assert restarted.returncode == 0, restarted.stderr + restarted.stdout
    assert "stale state" in restarted.stdout
    after = pids(state_dir)
    assert not set(after.values()) & set(before.values())
    assert len(processes_of(state_dir)) == 5
    assert (state_dir / "logs.previous" / "kube-scheduler.log").exists()

    down = run_script("cluster-down", state_dir, base)
    assert down.returncode == 0, down.stderr
    assert processes_of(state_dir) == []
    assert (state_dir / "logs" / "kube-apiserver.log").stat().st_size > 0
    again = run_script("cluster-down", state_dir, base)
    assert again.returncode == 0 and "nothing runs" in again.stdout


def test_second_cluster_up_reuses_the_session_cluster(cluster):
    before = pids(cluster.state_dir)
    started = time.monotonic()
    proc = run_script("cluster-up", cluster.state_dir, cluster.port_base)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "reusing the running control plane" in proc.stdout
    assert pids(cluster.state_dir) == before
    assert took < 15, took


def test_binaries_are_the_built_ones():
    for name in COMPONENTS:
        assert (BIN / name).exists(), f"{name} missing: make cluster-tools"


def test_a_process_that_ignores_sigterm_is_killed(tmp_path):
    """stop_group (cluster-down and every failure path): SIGTERM, then SIGKILL after the timeout."""
    stubborn = subprocess.Popen(["bash", "-c", "trap '' TERM; while :; do sleep 0.1; done"])
    script = (
        f'CLUSTER_DIR={tmp_path}/state; CLUSTER_STOP_TIMEOUT=1; source "{SCRIPTS}/cluster-lib.sh"; '
        f"stop_group {stubborn.pid}; gone {stubborn.pid} && echo GONE"
    )
    try:
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
        stubborn.wait(timeout=10)  # reaped here: gone() also accepts the zombie state before that
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
    assert proc.returncode == 0, proc.stderr
    assert f"(pid {stubborn.pid}) did not stop within 1s: SIGKILL" in proc.stdout
    assert proc.stdout.rstrip().endswith("GONE")
    assert stubborn.returncode == -9
