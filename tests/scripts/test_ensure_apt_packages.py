"""scripts/ensure-apt-packages, the one installer of Debian packages, on a machine without the
programs: every branch taken with the STAND-IN apt-get of tests/support/apt_standin.py (the
real one would change this machine), and what the caller receives (stdout, exit code, message,
the program found afterwards)."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from tests.support import paths
from tests.support.apt_standin import ECHO_PROGRAM, AptStandin

SCRIPT = str(paths.SCRIPTS_DIR / "ensure-apt-packages")
PACKAGES = {
    "openssh-server": {"/usr/sbin/sshd": ECHO_PROGRAM},
    "debootstrap": {"/usr/sbin/debootstrap": ECHO_PROGRAM},
}
# Both live in /usr/sbin, which is empty for the script under test (apt_standin.AptStandin.hide),
# whether this machine has them or not.


def test_fresh_machine_updates_lists_then_installs_quietly(tmp_path):
    apt = AptStandin(tmp_path, PACKAGES, lists_empty=True)
    proc = apt.run([SCRIPT, "sshd=openssh-server", "debootstrap=debootstrap", "sh=dash"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "", "callers capture stdout (host=$(...)): progress must go to stderr"
    assert "installing Debian's debootstrap openssh-server" in proc.stderr
    assert "no package lists" in proc.stderr
    assert apt.verbs() == ["update", "install"]
    install = apt.calls()[1]
    assert install["argv"][-4:] == ["-q", "--no-install-recommends", "debootstrap", "openssh-server"]
    assert "DPkg::Lock::Timeout=600" in install["argv"], "waits for another apt/dpkg instead of failing"
    assert install["frontend"] == "noninteractive"
    assert install["policy_rc_d"] == 101, "services of the packages must not be started by the install"
    again = apt.run(["sh", "-c", '"$0" sshd=openssh-server 2>/dev/null && test -x /usr/sbin/sshd '
                     '&& test ! -e /usr/sbin/policy-rc.d', SCRIPT])
    assert again.returncode == 0, "sshd installed where Debian puts it; policy-rc.d removed afterwards"


def test_program_found_afterwards(tmp_path):
    apt = AptStandin(tmp_path, PACKAGES)
    # in the same (namespaced) machine: install, then run the program by name
    proc = apt.run(["sh", "-c", '"$0" sshd=openssh-server 2>/dev/null && PATH="$PATH:/usr/sbin" sshd --version',
                    SCRIPT])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "/usr/sbin/sshd --version"


def test_present_commands_install_nothing(tmp_path):
    apt = AptStandin(tmp_path, PACKAGES)
    proc = apt.run([SCRIPT, "sh=dash", "python3=python3", f"{shutil.which('env')}=coreutils"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert apt.calls() == []


def test_stale_lists_update_once_and_retry(tmp_path):
    apt = AptStandin(tmp_path, PACKAGES, lists_empty=False, stale=True)
    proc = apt.run([SCRIPT, "debootstrap=debootstrap"])
    assert proc.returncode == 0, proc.stderr
    assert apt.verbs() == ["install", "update", "install"]
    assert proc.stdout == ""


def test_install_failure_fails_the_caller_with_the_reason(tmp_path):
    apt = AptStandin(tmp_path, PACKAGES, lists_empty=False, broken=True)
    proc = apt.run([SCRIPT, "debootstrap=debootstrap"])
    assert proc.returncode == 1
    assert proc.stdout == ""
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("ERROR apt: missing debootstrap (debootstrap); `apt-get install debootstrap` failed")
    assert "E: Unable to locate package debootstrap" in message
    log = message.rsplit("log: ", 1)[1]
    assert os.path.exists(log), "the log named in the message is kept"
    os.unlink(log)


def test_update_failure_on_a_fresh_machine(tmp_path):
    apt = AptStandin(tmp_path, PACKAGES, lists_empty=True, update_fails=True)
    proc = apt.run([SCRIPT, "sshd=openssh-server"])
    assert proc.returncode == 1
    assert "apt-get update failed (E: Failed to fetch" in proc.stderr
    assert apt.verbs() == ["update"]
    os.unlink(proc.stderr.rsplit("log: ", 1)[1].strip())


def test_installed_package_without_the_command_fails(tmp_path):
    apt = AptStandin(tmp_path, {"openssh-server": {}})
    proc = apt.run([SCRIPT, "sshd=openssh-server"])
    assert proc.returncode == 1
    assert "apt-get installed openssh-server but sshd is still not found" in proc.stderr
    os.unlink(proc.stderr.rsplit("log: ", 1)[1].strip())


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the script as another user: needs root")
def test_not_root_fails_saying_what_to_run(tmp_path):
    apt = AptStandin(tmp_path, PACKAGES)
    os.chmod(tmp_path, 0o755)
    # a Python that user can run (/root, where pyenv lives, is private)
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    proc = apt.run([shutil.which("setpriv"), "--reuid=nobody", "--regid=nogroup", "--clear-groups", python, SCRIPT,
                    "debootstrap=debootstrap"], cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("ERROR apt: missing debootstrap (debootstrap); installing needs root: run "
                                   "`apt-get install debootstrap` as root, or this as root")
    assert apt.calls() == []


def test_no_apt_get_fails_naming_the_packages(tmp_path):
    apt = AptStandin(tmp_path, PACKAGES)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = apt.env(PATH=str(empty))
    proc = apt.run([sys.executable, SCRIPT, "debootstrap=debootstrap"], env=env)
    assert proc.returncode == 1
    assert "no apt-get here (not Debian): install debootstrap with this system's package manager" in proc.stderr


@pytest.mark.parametrize("arg", ["sshd", "=openssh-server", "sshd="])
def test_bad_arguments(tmp_path, arg):
    proc = AptStandin(tmp_path, PACKAGES).run([SCRIPT, arg])
    assert proc.returncode == 1
    assert f"{arg!r}: expected <command>=<package>" in proc.stderr
