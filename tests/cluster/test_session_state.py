"""Concurrent pytest sessions of tests/cluster in one checkout do not share a control plane.

kwok nodes run no containers. Each session runs its control plane in its own state directory
(.cluster/tests-<pid>) on its own ports, removed at the end; a directory left by a killed
session is reaped by the next one. See tests/support/cluster.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.support import cluster as cluster_mod
from tests.support.cluster import SESSION_LOCK, _lock, _release, reap_stale_session_dirs
from tests.support.paths import REPO


def test_the_session_runs_in_its_own_state_directory(cluster):
    if cluster.keep:  # MLOPS_CLUSTER_KEEP=1: the shared, reusable directory
        assert cluster.state_dir == cluster_mod.TEST_STATE_DIR
        return
    assert cluster.state_dir == cluster_mod.STATE_ROOT / f"tests-{os.getpid()}"
    assert cluster.remove_state
    # the session holds its lock: a reaper in another session leaves the directory alone
    assert _lock(cluster.state_dir / SESSION_LOCK, blocking=False) is None


def test_a_second_session_gets_its_own_control_plane_and_stopping_it_leaves_ours_running(cluster):
    """Another pytest session (a subprocess) starts and stops its control plane while ours runs."""
    script = textwrap.dedent("""
        import json
        from tests.support.cluster import start_cluster
        c = start_cluster(register_atexit=False)
        nodes = [n.metadata.name for n in c.core.list_node().items]
        print(json.dumps({"dir": str(c.state_dir), "port": c.port_base, "nodes": nodes}))
        c.stop()
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_CLUSTER_KEEP", "MLOPS_CLUSTER_PORT_BASE")}
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    assert other["dir"] != str(cluster.state_dir)
    assert other["port"] != cluster.port_base
    assert len(other["nodes"]) >= 4
    assert not os.path.exists(other["dir"]), "the other session's state directory was not removed"
    # ours still answers, with the same processes
    assert cluster.core.read_node("kwok-gpu-0").metadata.name == "kwok-gpu-0"
    pid = (cluster.state_dir / "run" / "kube-apiserver.pid").read_text().strip()
    assert os.path.exists(f"/proc/{pid}")


def test_a_killed_session_directory_is_reaped_and_a_live_one_kept(tmp_path):
    dead = tmp_path / "tests-999999"
    (dead / "logs").mkdir(parents=True)
    (dead / SESSION_LOCK).touch()
    live = tmp_path / "tests-999998"
    live.mkdir()
    fd = _lock(live / SESSION_LOCK, blocking=False)
    other = tmp_path / "tests-keep-me"
    other.mkdir()
    try:
        removed = reap_stale_session_dirs(tmp_path)
    finally:
        _release(fd)
    assert removed == [dead]
    assert not dead.exists() and live.exists() and other.exists()
