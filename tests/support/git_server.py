"""The git-server image's entrypoint (images/git-server) run on this machine: real sshd on
127.0.0.1 and real git, every path under a temporary directory. Used by the image's own tests
(tests/images/test_git_server.py) and by kind-up's push of dags/ (tests/scripts/test_kind_git_push.py).
Here sshd runs as the test user (root on CI), in the image as uid 10001.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from . import paths
from .net import free_port
from .processes import running, ssh_banner

ENTRYPOINT = paths.IMAGES_DIR / "git-server" / "entrypoint.sh"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"

# The marks of every test that runs the git server.
requires_sshd = [
    pytest.mark.processes,
    pytest.mark.skipif(
        not (Path(SSHD).exists() and shutil.which("git") and shutil.which("ssh-keygen")),
        reason="needs sshd, ssh-keygen and git (apt-get install openssh-server openssh-client git)",
    ),
]


def keygen(path: Path, comment: str) -> str:
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
        self.host_pub = keygen(self.host_keys / "ssh_host_ed25519_key", "git-server-host")
        self.client_key = tmp / "client" / "id_ed25519"
        self.client_key.parent.mkdir()
        self.client_pub = keygen(self.client_key, "deploy-key")
        self.authorized.write_text(f"# deploy key\n{self.client_pub}\n")
        self.port = free_port()
        self.log = tmp / "sshd.log"
        self.proc: subprocess.Popen | None = None
        self._running = contextlib.ExitStack()

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
        """Run the entrypoint (sshd in the foreground) until stop(); wait for its SSH greeting."""
        self._running = contextlib.ExitStack()
        self.proc = self._running.enter_context(
            running(["bash", str(ENTRYPOINT)], self.log, self.env(), ssh_banner(self.port), timeout=20)
        )

    def read_log(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        self._running.close()

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
