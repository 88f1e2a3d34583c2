"""git-sync's SSH secret format against a real sshd and git.

The bootstrap script makes the deploy key, pins the host key with ssh-keyscan and prints the
Secret. The test lays the files out exactly as the official chart mounts them into git-sync
(/etc/git-secret/ssh from Secret key gitSshKey, /etc/git-secret/known_hosts from the chart's
ConfigMap) and clones through GIT_SSH_COMMAND with StrictHostKeyChecking=yes: it must work
with the pinned host key and fail with another one.

About the key file mode: the chart mounts the Secret with defaultMode 0440, owned by root,
and git-sync runs as another user (65533) in group fsGroup; OpenSSH only refuses group bits
on a key owned by the user running ssh. Here the test process owns the file, so it uses 0400:
the same "readable by the git-sync user, by nobody else" rule.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import debian, paths
from tests.support.net import free_port
from tests.support.processes import running, ssh_banner

pytestmark = pytest.mark.processes
SCRIPT = paths.SCRIPTS_DIR / "gitsync-bootstrap"


@pytest.fixture(scope="module")
def sshd_binary() -> str:
    try:
        return debian.ensure("sshd", "openssh-server")
    except debian.ProgramUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def server(sshd_binary: str, tmp_path_factory: pytest.TempPathFactory):
    """A real sshd on 127.0.0.1 serving a bare repository with a dags/ folder."""
    base = tmp_path_factory.mktemp("sshd")
    os.chmod(base, 0o755)
    hostkey = base / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)], check=True)
    authorized = base / "authorized_keys"
    authorized.write_text("")
    os.chmod(authorized, 0o600)
    port = free_port()
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {hostkey}\nPidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        "LogLevel VERBOSE\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    # the repository
    repo = base / "platform.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    work = base / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "dags").mkdir()
    (work / "dags" / "hello.py").write_text("# a DAG file\n")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "dags"], check=True)
    subprocess.run([*git, "push", "-q", str(repo), "main"], check=True)
    log = base / "sshd.log"
    with running([sshd_binary, "-D", "-e", "-f", str(config)], log, dict(os.environ), ssh_banner(port), 10):
        yield {"port": port, "repo": repo, "authorized": authorized, "log": log, "base": base}


def bootstrap(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, check=False)


def git_sync_layout(root: Path, secret_yaml: str, known_hosts: str) -> Path:
    """/etc/git-secret as git-sync sees it: `ssh` (Secret key gitSshKey) and `known_hosts`."""
    secret = yaml.safe_load(secret_yaml)
    etc = root / "etc" / "git-secret"
    etc.mkdir(parents=True)
    (etc / "ssh").write_bytes(base64.b64decode(secret["data"]["gitSshKey"]))
    os.chmod(etc / "ssh", 0o400)
    (etc / "known_hosts").write_text(known_hosts)
    os.chmod(etc / "known_hosts", 0o444)
    return etc


def clone(etc: Path, url: str, dest: Path) -> subprocess.CompletedProcess:
    ssh = (
        f"ssh -F /dev/null -i {etc / 'ssh'} -o UserKnownHostsFile={etc / 'known_hosts'} "
        "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10"
    )
    env = {**os.environ, "GIT_SSH_COMMAND": ssh, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "-b", "main", url, str(dest)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_help_and_errors() -> None:
    out = bootstrap("--help")
    assert out.returncode == 0 and "--host" in out.stdout and "--dry-run" in out.stdout
    out = bootstrap("--dry-run")
    assert out.returncode == 2 and "--host is required" in out.stderr
    out = bootstrap("--host", "h", "--port", "99999", "--dry-run")
    assert out.returncode == 2 and "--port must be 1-65535" in out.stderr
    out = bootstrap("--host", "h", "--bogus")
    assert out.returncode == 2 and "unknown argument: --bogus" in out.stderr
    out = bootstrap("--host", "h", "--dry-run", "--out-dir", str(paths.REPO / ".tmp" / "k"))
    assert out.returncode == 2 and "inside the git work tree" in out.stderr
    assert not (paths.REPO / ".tmp" / "k" / "gitSshKey").exists()


def test_unreachable_host_is_a_clear_error(tmp_path: Path) -> None:
    out = bootstrap(
        "--host", "127.0.0.1", "--port", str(free_port()), "--dry-run", "--out-dir", str(tmp_path / "o")
    )
    assert out.returncode == 2
    assert "ssh-keyscan got no host key from 127.0.0.1" in out.stderr


def test_clone_with_the_git_sync_files(server: dict, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    url = f"ssh://{user}@127.0.0.1:{server['port']}{server['repo']}"
    out = bootstrap(
        "--host",
        "127.0.0.1",
        "--port",
        str(server["port"]),
        "--repo",
        url,
        "--secret-name",
        "mlops-git-ssh",
        "--dry-run",
        "--out-dir",
        str(out_dir),
    )
    assert out.returncode == 0, out.stderr
    # what the user sees: fingerprint, values snippet, public key
    assert "SHA256:" in out.stderr and "compare them" in out.stderr
    assert "sshKeySecret: mlops-git-ssh" in out.stderr and f"repo: {url}" in out.stderr
    pub = (out_dir / "gitSshKey.pub").read_text().strip()
    assert pub in out.stderr and pub.startswith("ssh-ed25519 ")
    secret = yaml.safe_load(out.stdout)
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "mlops-git-ssh"
    assert set(secret["data"]) == {"gitSshKey"}
    known_hosts = (out_dir / "known_hosts").read_text()
    assert known_hosts.startswith(f"[127.0.0.1]:{server['port']} ")

    # the deploy key is registered on the server
    server["authorized"].write_text(pub + "\n")
    etc = git_sync_layout(tmp_path / "pinned", out.stdout, known_hosts)
    result = clone(etc, url, tmp_path / "clone")
    assert result.returncode == 0, f"{result.stderr}\nsshd log:\n{server['log'].read_text()[-2000:]}"
    assert (tmp_path / "clone" / "dags" / "hello.py").read_text() == "# a DAG file\n"

    # a different host key (a man in the middle, or a rebuilt server) is refused
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = (
        f"[127.0.0.1]:{server['port']} " + " ".join(other.with_suffix(".pub").read_text().split()[:2]) + "\n"
    )
    etc_wrong = git_sync_layout(tmp_path / "wrong", out.stdout, wrong)
    result = clone(etc_wrong, url, tmp_path / "clone-wrong")
    assert result.returncode != 0
    assert (
        "Host key verification failed" in result.stderr
        or "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr
    )
    assert not (tmp_path / "clone-wrong" / "dags").exists()

    # an empty known_hosts (what the official chart's default would mean) is refused too
    etc_none = git_sync_layout(tmp_path / "none", out.stdout, "")
    assert clone(etc_none, url, tmp_path / "clone-none").returncode != 0

    # the wrong deploy key is refused by the server
    server["authorized"].write_text("")
    assert clone(etc, url, tmp_path / "clone-nokey").returncode != 0


def test_host_key_file_instead_of_keyscan(tmp_path: Path) -> None:
    hk = tmp_path / "hk"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hk)], check=True)
    out = bootstrap(
        "--host",
        "git-server.mlops.svc.cluster.local",
        "--host-key",
        str(hk.with_suffix(".pub")),
        "--dry-run",
        "--out-dir",
        str(tmp_path / "o"),
    )
    assert out.returncode == 0, out.stderr
    line = (tmp_path / "o" / "known_hosts").read_text()
    assert line.split()[0] == "git-server.mlops.svc.cluster.local"
    assert line.split()[1:] == hk.with_suffix(".pub").read_text().split()[:2]
    assert "repo: ssh://git@git-server.mlops.svc.cluster.local/srv/git/platform.git" in out.stderr
