"""images/git-server: the entrypoint run for real (temporary root, real sshd on 127.0.0.1, real git).

The kind platform clones `ssh://git@git-server.mlops.svc.cluster.local/srv/git/platform.git` with
a known_hosts pinned from the host key Secret before Airflow is installed; these tests run the same
entrypoint with every path moved under a temporary directory and clone/push through sshd with
StrictHostKeyChecking=yes. Here sshd runs as the test user (root on CI), in the image as uid 10001.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.support.git_server import ENTRYPOINT, Server, keygen, requires_sshd

IMAGE_DIR = ENTRYPOINT.parent

pytestmark = requires_sshd


@pytest.fixture
def server(tmp_path: Path):
    srv = Server(tmp_path)
    yield srv
    srv.stop()


def test_clone_push_clone_with_pinned_host_key(server: Server) -> None:
    server.start()
    work = server.tmp / "work"
    r = server.git("clone", server.url(), str(work))
    assert r.returncode == 0, r.stderr
    assert "empty repository" in r.stderr
    (work / "dags").mkdir()
    (work / "dags" / "example.py").write_text("# a DAG\n")
    assert server.git("add", "dags", cwd=work).returncode == 0
    assert server.git("commit", "-qm", "dags", cwd=work).returncode == 0
    r = server.git("push", "origin", "HEAD:refs/heads/main", cwd=work)
    assert r.returncode == 0, r.stderr

    # A fresh clone without --branch gets `main` (HEAD of the bare repository) and the file.
    again = server.tmp / "again"
    r = server.git("clone", server.url(), str(again))
    assert r.returncode == 0, r.stderr
    assert (again / "dags" / "example.py").read_text() == "# a DAG\n"
    branch = server.git("rev-parse", "--abbrev-ref", "HEAD", cwd=again).stdout.strip()
    assert branch == "main"
    assert "authorized_keys: 1 key(s)" in server.read_log()


def test_wrong_pinned_host_key_is_refused(server: Server) -> None:
    server.start()
    other = keygen(server.tmp / "other_host_key", "impostor")
    r = server.git("clone", server.url(), str(server.tmp / "x"), known_hosts=server.known_hosts(other))
    assert r.returncode != 0
    assert "Host key verification failed" in r.stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in r.stderr


def test_key_not_in_authorized_keys_is_refused(server: Server) -> None:
    server.start()
    stranger = server.tmp / "client" / "stranger"
    keygen(stranger, "stranger")
    r = server.git("clone", server.url(), str(server.tmp / "x"), key=stranger)
    assert r.returncode != 0
    assert "Permission denied" in r.stderr


def test_check_mode_writes_restricted_keys_and_hardened_config(server: Server) -> None:
    r = server.run("check")
    assert r.returncode == 0, r.stderr
    assert "configuration ok" in r.stderr
    keys = (server.state / "authorized_keys").read_text().splitlines()
    assert keys == [f"restrict {server.client_pub}"]
    cfg = (server.state / "sshd_config").read_text()
    for line in (
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "AllowTcpForwarding no",
        "X11Forwarding no",
        f"Port {server.port}",
        f"HostKey {server.state}/ssh_host_ed25519_key",
    ):
        assert line in cfg.splitlines(), line
    assert oct((server.state / "ssh_host_ed25519_key").stat().st_mode & 0o777) == "0o600"
    head = (server.root / "platform.git" / "HEAD").read_text().strip()
    assert head == "ref: refs/heads/main"


def test_existing_repository_is_kept(server: Server) -> None:
    assert server.run("check").returncode == 0
    marker = server.root / "platform.git" / "description"
    marker.write_text("kept\n")
    r = server.run("check")
    assert r.returncode == 0, r.stderr
    assert marker.read_text() == "kept\n"
    assert "exists" in r.stderr


def test_several_repositories_and_branch(server: Server) -> None:
    r = server.run("check", GIT_SERVER_REPOS="platform extra", GIT_SERVER_BRANCH="dags")
    assert r.returncode == 0, r.stderr
    for name in ("platform", "extra"):
        assert (server.root / f"{name}.git" / "HEAD").read_text().strip() == "ref: refs/heads/dags"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: shutil.rmtree(s.host_keys), "host key directory"),
        (lambda s: (s.host_keys / "ssh_host_ed25519_key.pub").unlink(), "has no public half"),
        (
            lambda s: [p.unlink() for p in s.host_keys.iterdir()],
            "no host keys",
        ),
        (lambda s: s.authorized.unlink(), "authorized keys file"),
        (lambda s: s.authorized.write_text("# only a comment\n\n"), "holds no public key"),
        (
            lambda s: s.authorized.write_text(f'command="/bin/sh" {s.client_pub}\n'),
            "line 1 is not a plain public key",
        ),
        (
            lambda s: s.authorized.write_text("ssh-ed25519 AAAAnotakey comment\n"),
            "ssh-keygen cannot read this public key",
        ),
    ],
    ids=[
        "no-host-key-dir",
        "no-pub-half",
        "no-host-keys",
        "no-authorized",
        "empty-authorized",
        "options",
        "garbage",
    ],
)
def test_bad_mounts_fail_with_a_clear_message(server: Server, mutate, message: str) -> None:
    mutate(server)
    r = server.run("check")
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert r.stderr.startswith("git-server: error:") or "git-server: error:" in r.stderr


def test_mismatched_host_key_halves_are_rejected(server: Server) -> None:
    other = keygen(server.tmp / "other", "other")
    (server.host_keys / "ssh_host_ed25519_key.pub").write_text(other + "\n")
    r = server.run("check")
    assert r.returncode != 0
    assert "does not match" in r.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GIT_SERVER_PORT": "70000"}, "is not a TCP port"),
        ({"GIT_SERVER_REPOS": "../escape"}, "must match"),
        ({"GIT_SERVER_BRANCH": "main;rm"}, "not a valid branch name"),
    ],
)
def test_bad_settings_fail(server: Server, env: dict[str, str], message: str) -> None:
    r = server.run("check", **env)
    assert r.returncode != 0
    assert message in r.stderr


def test_unknown_argument_fails(server: Server) -> None:
    r = server.run("bash")
    assert r.returncode != 0
    assert "unknown argument 'bash'" in r.stderr


# --- the image definition ------------------------------------------------------------------


def test_dockerfile_runs_unprivileged_from_a_pinned_base() -> None:
    text = (IMAGE_DIR / "Dockerfile").read_text()
    # the official base is the default of the DEBIAN_IMAGE build argument (stand-ins only by argument)
    base = re.search(r"^ARG DEBIAN_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.search(r"^FROM \$\{DEBIAN_IMAGE\}$", text, re.M)
    assert ":" in base and not base.endswith(":latest"), base
    user = re.findall(r"^USER\s+(\S+)", text, re.M)[-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root uid (runAsNonRoot needs it)"
    assert "/usr/local/bin/git-server-entrypoint" in text
    assert "--shell /usr/bin/git-shell" in text, "the git user must not get an interactive shell"
    # The entrypoint keeps its exec bit through COPY: it must be executable in the checkout.
    assert os.access(ENTRYPOINT, os.X_OK)
