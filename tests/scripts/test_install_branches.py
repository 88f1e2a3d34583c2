"""Every "install X when missing" branch of the repository, taken on a machine without X: the
STAND-IN apt-get of tests/support/apt_standin.py records the call and "installs" the package's
programs where Debian puts them, inside a private mount namespace whose /usr/sbin and /sbin
(and /usr/lib/postgresql) are empty, so the caller sees a machine without them. Each test
checks what the caller receives: stdout (callers capture it), exit code, message, and that
the caller finds and runs what was installed. scripts/ensure-apt-packages itself:
test_ensure_apt_packages.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support import paths, postgres
from tests.support.apt_standin import ECHO_PROGRAM, AptStandin

SCRIPTS = paths.SCRIPTS_DIR

# STAND-IN dockerd: writes its pidfile, creates its socket path as a plain file, runs until
# stopped. The STAND-IN docker client answers `version` when that path exists.
STANDIN_DOCKERD = """#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in --host) sock=${2#unix://}; shift ;; --pidfile) pidfile=$2; shift ;; esac
  shift
done
echo $$ >"$pidfile"
: >"$sock"
trap 'rm -f "$sock"; exit 0' TERM
while :; do sleep 0.2; done
"""
STANDIN_DOCKER_CLIENT = """#!/bin/sh
sock=${DOCKER_HOST#unix://}
prev=
for a; do [ "$prev" = -H ] && sock=${a#unix://}; prev=$a; done
[ -e "$sock" ] || { echo "Cannot connect to the Docker daemon at unix://$sock" >&2; exit 1; }
echo "Docker 20.10.24-standin"
"""


def docker_env(apt: AptStandin, tmp_path: Path) -> dict[str, str]:
    client = tmp_path / "docker-client"
    client.write_text(STANDIN_DOCKER_CLIENT)
    client.chmod(0o755)
    env = apt.env(DOCKER=str(client), DOCKER_STATE_DIR=str(tmp_path / "state"), DOCKER_START_TIMEOUT="20")
    env.pop("DOCKER_HOST", None)
    return env


def test_docker_engine_installs_docker_io_and_hands_over_a_clean_docker_host(tmp_path):
    apt = AptStandin(tmp_path, {"docker.io": {"/usr/sbin/dockerd": STANDIN_DOCKERD}})
    env = docker_env(apt, tmp_path)
    proc = apt.run([str(SCRIPTS / "docker-engine"), "run", "sh", "-c", 'echo "DOCKER_HOST=$DOCKER_HOST"'], env=env)
    assert proc.returncode == 0, proc.stderr
    # the command's stdout is exactly its own: no install progress inside DOCKER_HOST
    assert re.fullmatch(r"DOCKER_HOST=unix:///tmp/mlops-docker-[0-9a-f]{12}/docker\.sock\n", proc.stdout), proc.stdout
    assert "apt: installing Debian's docker.io" in proc.stderr
    assert "engine Docker 20.10.24-standin at unix:///tmp/mlops-docker-" in proc.stderr
    assert "started here" in proc.stderr and "engine stopped" in proc.stderr
    assert apt.verbs() == ["update", "install"]
    assert apt.calls()[1]["argv"][-1] == "docker.io"
    run_dir = proc.stdout.strip().split("unix://")[1].rsplit("/", 1)[0]
    assert not Path(run_dir).exists(), "the engine's runtime directory is removed when it stops"
    assert subprocess.run(["pgrep", "-f", run_dir], capture_output=True).returncode == 1, "engine left running"


def test_docker_engine_start_prints_only_the_host(tmp_path):
    apt = AptStandin(tmp_path, {"docker.io": {"/usr/sbin/dockerd": STANDIN_DOCKERD}})
    env = docker_env(apt, tmp_path)
    try:
        proc = apt.run([str(SCRIPTS / "docker-engine"), "start"], env=env)
        assert proc.returncode == 0, proc.stderr
        assert re.fullmatch(r"DOCKER_HOST=unix://\S+\n", proc.stdout), proc.stdout
    finally:
        # the namespace is gone; the stand-in dockerd (a plain process) is stopped through the
        # script, which finds it by its pidfile
        apt.run([str(SCRIPTS / "docker-engine"), "stop"], env=env)


def test_docker_engine_fails_when_docker_io_cannot_be_installed(tmp_path):
    apt = AptStandin(tmp_path, {"docker.io": {"/usr/sbin/dockerd": STANDIN_DOCKERD}}, lists_empty=False, broken=True)
    proc = apt.run([str(SCRIPTS / "docker-engine"), "run", "true"], env=docker_env(apt, tmp_path))
    assert proc.returncode == 1
    assert proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert errors[0].startswith("ERROR apt: missing dockerd (docker.io); `apt-get install docker.io` failed (E: ")
    assert errors[1] == ("ERROR docker: no Docker engine: install Debian's docker.io (see the line above) "
                         "or set DOCKER_HOST")
    Path(errors[0].rsplit("log: ", 1)[1]).unlink()


STANDIN_DEBOOTSTRAP = "#!/bin/sh\necho 'E: STAND-IN debootstrap: no archive in this test' >&2\nexit 1\n"


def test_images_standins_installs_debootstrap_and_runs_it(tmp_path):
    apt = AptStandin(tmp_path, {"debootstrap": {"/usr/sbin/debootstrap": STANDIN_DEBOOTSTRAP}})
    env = docker_env(apt, tmp_path)  # the stand-in client has no image: every base is needed
    proc = apt.run([str(SCRIPTS / "images-standins"), str(tmp_path / "cache"), str(tmp_path / "wheels"), "debian"],
                   env=env)
    assert apt.verbs() == ["update", "install"] and apt.calls()[1]["argv"][-1] == "debootstrap"
    assert proc.returncode == 1
    assert "apt: installing Debian's debootstrap" in proc.stderr
    # the installed debootstrap is the one the script then runs
    assert "ERROR standins: debootstrap failed: E: STAND-IN debootstrap: no archive in this test" in proc.stderr


def test_images_standins_fails_when_debootstrap_cannot_be_installed(tmp_path):
    apt = AptStandin(tmp_path, {}, lists_empty=False, broken=True)
    proc = apt.run([str(SCRIPTS / "images-standins"), str(tmp_path / "cache"), str(tmp_path / "wheels"), "debian"],
                   env=docker_env(apt, tmp_path))
    assert proc.returncode == 1
    assert "ERROR standins: debootstrap is needed to build the stand-in bases (see the line above)" in proc.stderr
    Path(proc.stderr.split("log: ", 1)[1].split()[0]).unlink()


POSTGRES = {"postgresql-15": {"/usr/lib/postgresql/15/bin/initdb": ECHO_PROGRAM}}
HIDE_POSTGRES = ("/usr/sbin", "/sbin", "/usr/lib/postgresql")
ENSURE_POSTGRES = [sys.executable, "-c", "from tests.support import postgres; print(postgres.ensure_installed())"]


def test_postgres_installed_for_the_tests(tmp_path):
    apt = AptStandin(tmp_path, POSTGRES, hide=HIDE_POSTGRES)
    proc = apt.run(ENSURE_POSTGRES)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "/usr/lib/postgresql/15/bin\n"
    assert apt.calls()[-1]["argv"][-1] == "postgresql-15"


def test_postgres_unavailable_names_the_reason(tmp_path):
    apt = AptStandin(tmp_path, POSTGRES, hide=HIDE_POSTGRES, lists_empty=False, broken=True)
    proc = apt.run(ENSURE_POSTGRES)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("tests.support.postgres.PostgresUnavailable: PostgreSQL 15 is needed: ERROR apt: missing "
                           "/usr/lib/postgresql/15/bin/initdb (postgresql-15); `apt-get install postgresql-15` failed")
    Path(last.rsplit("log: ", 1)[1]).unlink()


def make_system_packages() -> list[str]:
    out = subprocess.run(["make", "-s", "--no-print-directory", "--eval", "show:;@echo $(SYSTEM_PACKAGES)", "show"],
                         cwd=paths.REPO, capture_output=True, text=True, check=True).stdout
    return out.split()


def test_make_system_packages_installs_what_is_missing(tmp_path):
    pairs = [p.split("=", 1) for p in make_system_packages()]
    # the PostgreSQL the tests start (tests/support/postgres.py) is the one make installs
    assert [str(postgres.BIN_DIR / "initdb"), postgres.PACKAGE] in pairs
    packages = {pkg: {cmd: ECHO_PROGRAM} for cmd, pkg in pairs}
    for cmd, pkg in pairs:
        packages[pkg][cmd] = ECHO_PROGRAM
    apt = AptStandin(tmp_path, packages, hide=HIDE_POSTGRES)
    # which commands this machine has outside the hidden directories: those are not installed
    have = apt.run(["sh", "-c", 'for c; do command -v "$c" >/dev/null || [ -x "$c" ] && echo "$c"; done; true',
                    "sh", *(cmd for cmd, _ in pairs)]).stdout.split()
    proc = apt.run(["make", "-s", "system-packages"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    expected = sorted({pkg for cmd, pkg in pairs if cmd not in have})
    assert "openssh-server" in expected and "postgresql-15" in expected
    install = apt.calls()[-1]["argv"]
    assert install[install.index("--no-install-recommends") + 1:] == expected


def test_make_system_packages_fails_when_it_cannot_install(tmp_path):
    apt = AptStandin(tmp_path, {}, hide=HIDE_POSTGRES, lists_empty=False, broken=True)
    proc = apt.run(["make", "-s", "system-packages"])
    assert proc.returncode == 2, "make stops: the tiers after it never run"
    line = next(x for x in proc.stderr.splitlines() if x.startswith("ERROR apt:"))
    assert re.match(r"ERROR apt: missing sshd \(openssh-server\), .*/usr/lib/postgresql/15/bin/initdb "
                    r"\(postgresql-15\); `apt-get install [a-z0-9 .-]*openssh-server[a-z0-9 .-]*` failed", line), line
    Path(line.rsplit("log: ", 1)[1]).unlink()


# an apt-get run on this machine: a command at the start of a shell line or after && || ; {,
# or the first item of a Python argument list (messages and chroot'ed apt-get excluded)
APT_CALL = re.compile(r"""^\s*(if\s+!\s*)?(\{\s*)?apt-get\s|(&&|\|\||;)\s*apt-get\s|\[\s*["']apt-get["']""")
NOT_SCANNED = {"scripts/ensure-apt-packages", "tests/support/apt_standin.py", "tests/scripts/test_install_branches.py"}


def test_every_install_goes_through_the_one_installer():
    """A new "install when missing" branch calls scripts/ensure-apt-packages (host side); the
    images install inside their own builds (Dockerfiles) and chroots, which is not this machine."""
    files = subprocess.run(["git", "ls-files", "scripts", "tests", "tools", "Makefile", ".ci"], cwd=paths.REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    calls = []
    for name in files:
        if name in NOT_SCANNED or not (paths.REPO / name).is_file():
            continue
        for number, line in enumerate((paths.REPO / name).read_text(errors="replace").splitlines(), 1):
            if APT_CALL.search(line) and "chroot" not in line:
                calls.append(f"{name}:{number}: {line.strip()}")
    assert calls == [], calls


def test_the_guard_sees_an_apt_get_call():
    for line in ("apt-get install -y x", '  { apt-get update -qq && apt-get install x; }',
                 'subprocess.run(["apt-get", "install", "x"])', "if ! apt-get install -y x; then"):
        assert APT_CALL.search(line), line
    for line in ('die "no docker client found (apt-get install docker.io)"', 'chroot "$root" apt-get clean'):
        assert not APT_CALL.search(line) or "chroot" in line, line
