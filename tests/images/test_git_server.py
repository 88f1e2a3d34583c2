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
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import paths
from tests.support.net import free_port

IMAGE_DIR = paths.IMAGES_DIR / "git-server"
ENTRYPOINT = IMAGE_DIR / "entrypoint.sh"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(
        not (Path(SSHD).exists() and shutil.which("git") and shutil.which("ssh-keygen")),
        reason="needs sshd, ssh-keygen and git (apt-get install openssh-server openssh-client git)",
    ),
]


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
    )
    return Path(f"{path}.pub").read_text().strip()


class Server:
    """One prepared layout: host keys, authorized keys, client key, env for the entrypoint."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "srv" / "git"
        self.state = tmp / "run" / "git-server"
        self.host_keys = tmp / "etc" / "host-keys"
        self.authorized = tmp / "etc" / "authorized-keys" / "authorized_keys"
        self.host_keys.mkdir(parents=True)
        self.authorized.parent.mkdir(parents=True)
        self.host_pub = _keygen(self.host_keys / "ssh_host_ed25519_key", "git-server-host")
        self.client_key = tmp / "client" / "id_ed25519"
        self.client_key.parent.mkdir()
        self.client_pub = _keygen(self.client_key, "deploy-key")
        self.authorized.write_text(f"# deploy key\n{self.client_pub}\n")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "GIT_SERVER_ROOT": str(self.root),
            "GIT_SERVER_STATE_DIR": str(self.state),
            "GIT_SERVER_HOST_KEYS_DIR": str(self.host_keys),
            "GIT_SERVER_AUTHORIZED_KEYS": str(self.authorized),
            "GIT_SERVER_PORT": str(self.port),
            "GIT_SERVER_LISTEN": "127.0.0.1",
            "GIT_SERVER_SSHD": SSHD,
        }
        env.update(extra)
        return env

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(ENTRYPOINT), *args],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self) -> None:
        self.log = open(self.tmp / "sshd.log", "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["bash", str(ENTRYPOINT)], env=self.env(), stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"entrypoint exited {self.proc.returncode}:\n{self.read_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(64).startswith(b"SSH-2.0-"):
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"sshd did not answer on 127.0.0.1:{self.port}:\n{self.read_log()}")

    def read_log(self) -> str:
        self.log.flush()
        return (self.tmp / "sshd.log").read_text()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.proc:
            self.log.close()

    def known_hosts(self, pub: str | None = None) -> Path:
        key_type, key_b64 = (pub or self.host_pub).split()[:2]
        kh = self.tmp / f"known_hosts-{abs(hash(key_b64))}"
        kh.write_text(f"[127.0.0.1]:{self.port} {key_type} {key_b64}\n")
        return kh

    def url(self, repo: str = "platform") -> str:
        user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
        return f"ssh://{user}@127.0.0.1:{self.port}{self.root}/{repo}.git"

    def git(
        self, *args: str, cwd: Path | None = None, key: Path | None = None, known_hosts: Path | None = None
    ) -> subprocess.CompletedProcess:
        ssh = (
            f"ssh -i {key or self.client_key} -o IdentitiesOnly=yes -o BatchMode=yes "
            f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts or self.known_hosts()} "
            "-o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10"
        )
        env = {
            **os.environ,
            "GIT_SSH_COMMAND": ssh,
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.tmp),
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        }
        return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


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
    other = _keygen(server.tmp / "other_host_key", "impostor")
    r = server.git("clone", server.url(), str(server.tmp / "x"), known_hosts=server.known_hosts(other))
    assert r.returncode != 0
    assert "Host key verification failed" in r.stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in r.stderr


def test_key_not_in_authorized_keys_is_refused(server: Server) -> None:
    server.start()
    stranger = server.tmp / "client" / "stranger"
    _keygen(stranger, "stranger")
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
    other = _keygen(server.tmp / "other", "other")
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
    base = re.search(r"^FROM\s+(\S+)", text, re.M).group(1)
    assert ":" in base and not base.endswith(":latest"), base
    user = re.findall(r"^USER\s+(\S+)", text, re.M)[-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root uid (runAsNonRoot needs it)"
    assert "/usr/local/bin/git-server-entrypoint" in text
    assert "--shell /usr/bin/git-shell" in text, "the git user must not get an interactive shell"
    # The entrypoint keeps its exec bit through COPY: it must be executable in the checkout.
    assert os.access(ENTRYPOINT, os.X_OK)
