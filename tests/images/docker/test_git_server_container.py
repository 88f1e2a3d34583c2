"""The git-server image as the kind platform runs it (scripts/kind/git-server.yaml: user,
read-only root, mounts of the host key and authorized key Secrets), serving the repository
over SSH on 127.0.0.1 to a git client that checks the pinned host key: push, clone, and a
refused connection with a wrong known_hosts. The base may be a STAND-IN (see conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.images.docker import engine
from tests.support import paths
from tests.support.net import free_port
from tests.support.processes import ssh_banner

MANIFEST = paths.SCRIPTS_DIR / "kind" / "git-server.yaml"

pytestmark = pytest.mark.skipif(
    not (shutil.which("ssh") and shutil.which("ssh-keygen") and shutil.which("git")),
    reason="needs the OpenSSH client and git (make test installs them)",
)


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


def _secret_dir(path: Path, files: dict[str, str], gid: int) -> Path:
    """A Secret volume as the kubelet writes it: defaultMode 0440, group fsGroup."""
    path.mkdir(parents=True)
    for name, text in files.items():
        f = path / name
        f.write_text(text)
        if os.geteuid() == 0:
            os.chown(f, 0, gid)
            f.chmod(0o440)
        else:
            f.chmod(0o444)
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def git_server(built_images, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("git-server")
    (deploy,) = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d and d.get("kind") == "Deployment"]
    spec = deploy["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    gid = spec["securityContext"]["fsGroup"]
    keys = tmp / "keys"
    keys.mkdir()
    host_pub = _keygen(keys / "ssh_host_ed25519_key", "git-server-host")
    client_key = tmp / "client" / "id_ed25519"
    client_key.parent.mkdir()
    client_pub = _keygen(client_key, "deploy-key")
    repos = tmp / "repos"
    repos.mkdir()
    repos.chmod(0o777)  # the claim, writable by fsGroup in the cluster
    volumes = {
        "repos": repos,
        "host-keys": _secret_dir(tmp / "host-keys", {
            "ssh_host_ed25519_key": (keys / "ssh_host_ed25519_key").read_text(),
            "ssh_host_ed25519_key.pub": host_pub + "\n"}, gid),
        "authorized-keys": _secret_dir(tmp / "authorized-keys", {"authorized_keys": client_pub + "\n"}, gid),
    }  # fmt: skip
    port = free_port()
    run = engine.from_pod(
        spec, container, engine.image("git-server"), volumes,
        argv=["/usr/local/bin/git-server-entrypoint"],
        env={"GIT_SERVER_PORT": str(port), "GIT_SERVER_LISTEN": "127.0.0.1"},
    )  # fmt: skip
    assert run.read_only and run.user == "10001:10001"
    known = tmp / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    with engine.serving(run, ssh_banner(port), f"mlops-test-git-{port}"):
        yield {"port": port, "key": client_key, "known": known, "tmp": tmp, "repos": repos}


def _git(server, *args: str, known: Path | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    ssh = (
        f"ssh -i {server['key']} -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes "
        f"-o UserKnownHostsFile={known or server['known']} -o BatchMode=yes"
    )
    env = {**os.environ, "GIT_SSH_COMMAND": ssh, "GIT_TERMINAL_PROMPT": "0",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    return subprocess.run(["git", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_push_then_clone_over_ssh_with_pinned_host_key(git_server) -> None:
    url = f"ssh://git@127.0.0.1:{git_server['port']}/srv/git/platform.git"
    work = git_server["tmp"] / "work"
    assert _git(git_server, "init", "-q", "-b", "main", str(work)).returncode == 0
    (work / "dags").mkdir()
    (work / "dags" / "hello.py").write_text("# a DAG\n")
    assert _git(git_server, "add", ".", cwd=work).returncode == 0
    assert _git(git_server, "commit", "-qm", "dags", cwd=work).returncode == 0
    push = _git(git_server, "push", "-q", url, "main", cwd=work)
    assert push.returncode == 0, push.stderr
    clone = _git(git_server, "clone", "-q", "--branch", "main", url, str(git_server["tmp"] / "clone"))
    assert clone.returncode == 0, clone.stderr
    assert (git_server["tmp"] / "clone" / "dags" / "hello.py").read_text() == "# a DAG\n"
    # the bare repository on the volume was written by the image's user
    assert (git_server["repos"] / "platform.git" / "HEAD").stat().st_uid == 10001


def test_wrong_host_key_is_refused(git_server) -> None:
    other = git_server["tmp"] / "other"
    other.mkdir()
    wrong = _keygen(other / "k", "not-the-server")
    known = git_server["tmp"] / "wrong_known_hosts"
    known.write_text(f"[127.0.0.1]:{git_server['port']} {wrong}\n")
    url = f"ssh://git@127.0.0.1:{git_server['port']}/srv/git/platform.git"
    r = _git(git_server, "ls-remote", url, known=known)
    assert r.returncode != 0
    assert "host key" in r.stderr.lower()


def test_no_shell_for_the_git_user(git_server) -> None:
    ssh = ["ssh", "-i", str(git_server["key"]), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
           "-o", f"UserKnownHostsFile={git_server['known']}", "-o", "StrictHostKeyChecking=yes",
           "-p", str(git_server["port"]), "git@127.0.0.1", "id"]  # fmt: skip
    r = subprocess.run(ssh, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "uid=" not in r.stdout
