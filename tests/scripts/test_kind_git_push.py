"""kind-up's push of dags/ (scripts/kind/git-push.sh) against the git-server entrypoint + real sshd.

Same path as in the cluster minus kubectl: kind-up port-forwards to the git server and pushes
with its own key and a known_hosts pinned from the host key Secret; here the server is the
image's entrypoint on 127.0.0.1 (tests/support/git_server.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import paths
from tests.support.git_server import Server, requires_sshd

pytestmark = requires_sshd
KIND_DIR = paths.SCRIPTS_DIR / "kind"


def _push(server: Server, clone: Path) -> subprocess.CompletedProcess:
    ssh = (
        f"ssh -i {server.client_key} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes "
        f"-o UserKnownHostsFile={server.known_hosts()} -o GlobalKnownHostsFile=/dev/null"
    )
    script = f"""
set -euo pipefail
source {KIND_DIR}/lib.sh
source {KIND_DIR}/git-push.sh
export GIT_SSH_COMMAND="{ssh}"
push_dags {server.url()} {clone}
"""
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(server.tmp)},
    )


def _checkout_dags() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "dags"],
        cwd=paths.REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {f for f in out.split("\0") if f and (paths.REPO / f).is_file()}


def _tree(server: Server, where: Path) -> set[str]:
    r = server.git("clone", "--quiet", "--branch", "main", server.url(), str(where))
    assert r.returncode == 0, r.stderr
    return {str(p.relative_to(where)) for p in where.rglob("*") if p.is_file() and ".git" not in p.parts}


def _commits(server: Server) -> int:
    out = subprocess.run(
        ["git", "--git-dir", str(server.root / "platform.git"), "rev-list", "--count", "main"],
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip() or 0)


@pytest.fixture
def server(tmp_path: Path):
    srv = Server(tmp_path)
    srv.start()
    yield srv
    srv.stop()


def test_push_dags_then_nothing_then_restore(server: Server, tmp_path: Path) -> None:
    expected = _checkout_dags()
    assert any(f.endswith(".py") for f in expected)

    first = _push(server, tmp_path / "c1")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "pushed" in first.stdout
    assert _tree(server, tmp_path / "v1") == expected
    assert _commits(server) == 1

    # A second kind-up: nothing changed, nothing pushed.
    second = _push(server, tmp_path / "c2")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already holds this dags/" in second.stdout
    assert _commits(server) == 1

    # Someone pushed an extra DAG (as tests/kind does): kind-up restores the checkout's dags/.
    extra = tmp_path / "v1" / "dags" / "extra_probe.py"
    extra.write_text("# probe\n")
    for args in (
        ["add", "dags/extra_probe.py"],
        ["commit", "-qm", "probe"],
        ["push", "-q", "origin", "HEAD:main"],
    ):
        r = server.git(*args, cwd=tmp_path / "v1")
        assert r.returncode == 0, r.stderr
    third = _push(server, tmp_path / "c3")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "pushed" in third.stdout
    assert _tree(server, tmp_path / "v3") == expected
    assert _commits(server) == 3


def test_push_to_a_server_that_refuses_the_key_fails_clearly(server: Server, tmp_path: Path) -> None:
    server.authorized.write_text(server.host_pub + "\n")  # not the client's key
    server.stop()
    server.start()
    proc = _push(server, tmp_path / "c")
    assert proc.returncode == 1
    assert "ERROR in step" in proc.stderr and "git clone" in proc.stderr
    assert "Permission denied" in proc.stderr
