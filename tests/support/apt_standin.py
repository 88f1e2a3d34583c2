"""STAND-IN for Debian's apt-get, to take the "install X when missing" branches of the scripts
on a machine where X is installed (or must not be installed by a test).

The stand-in `apt-get` (first on PATH) records every call (argv, DEBIAN_FRONTEND, whether a
policy-rc.d answering 101 stopped service starts) in a JSON-lines log and acts like apt:
`update` writes a Packages index into the lists directory (APT_LISTS_DIR); `install P...`
creates the commands of the packages the test declares, fails when the lists are empty or
stale (`stale=True`: until one `update`), or always (`broken=True`, apt's own `E:` line).

The caller runs in a private mount namespace where the Debian locations a package would
install to are empty tmpfs (`hide`, default /usr/sbin and /sbin): for the caller, the machine
does not have the program, even though this machine does; the stand-in "installs" there, so
the caller finds the program where Debian puts it. Nothing outside the namespace changes
(policy-rc.d too lands in the namespace's /usr/sbin).

    apt = AptStandin(tmp_path, {"openssh-server": {"/usr/sbin/sshd": SCRIPT}})
    proc = apt.run(["scripts/ensure-apt-packages", "sshd=openssh-server"])
    apt.calls()  -> [{"argv": ["update"], ...}, {"argv": ["install", ...], ...}]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.paths import REPO

APT_GET = r'''#!{python}
# STAND-IN apt-get (tests/support/apt_standin.py): records the call, acts on update/install.
import json, os, subprocess, sys
from pathlib import Path

config = json.loads(Path(os.environ["STANDIN_APT_CONFIG"]).read_text())
lists = Path(os.environ["APT_LISTS_DIR"])
args = [a for a in sys.argv[1:] if a != "-o" and not a.startswith("DPkg::")]
policy = Path("/usr/sbin/policy-rc.d")
policy_rc = subprocess.run([str(policy), "ssh", "start"]).returncode if os.access(policy, os.X_OK) else None
with open(config["log"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "frontend": os.environ.get("DEBIAN_FRONTEND"),
                          "policy_rc_d": policy_rc}}) + "\n")
verb = args[0] if args else ""
if verb == "update":
    if config["update_fails"]:
        print("E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease", file=sys.stderr)
        sys.exit(100)
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages").write_text("Package: x\n")
    (lists / ".fresh").write_text("")
    sys.exit(0)
if verb == "install":
    packages = [a for a in args[1:] if not a.startswith("-")]
    has_lists = any(lists.glob("*_Packages*"))
    if config["broken"] or not has_lists or (config["stale"] and not (lists / ".fresh").exists()):
        print(f"E: Unable to locate package {{packages[0]}}", file=sys.stderr)
        sys.exit(100)
    for package in packages:
        if package not in config["packages"]:
            print(f"E: Unable to locate package {{package}}", file=sys.stderr)
            sys.exit(100)
        for command, text in config["packages"][package].items():
            path = Path(command) if command.startswith("/") else Path(config["bin"]) / command
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o755)
    print(f"Setting up {{' '.join(packages)}} ...")
    sys.exit(0)
print(f"E: stand-in apt-get: unexpected call {{sys.argv[1:]}}", file=sys.stderr)
sys.exit(100)
'''

# A program a stand-in package installs: prints its name and arguments.
ECHO_PROGRAM = "#!/bin/sh\necho \"$0 $*\"\n"


@dataclass
class AptStandin:
    base: Path
    packages: dict[str, dict[str, str]]  # package -> {command name or absolute path: file text}
    lists_empty: bool = True  # a fresh machine: apt has no package lists yet
    stale: bool = False  # lists present but install fails until one `apt-get update`
    broken: bool = False  # every install fails
    update_fails: bool = False
    hide: tuple[str, ...] = ("/usr/sbin", "/sbin")
    bin: Path = field(init=False)
    lists: Path = field(init=False)

    def __post_init__(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.bin = self.base / "standin-bin"  # apt-get, and the commands of "installed" packages
        self.bin.mkdir(exist_ok=True)
        self.lists = self.base / "apt-lists"
        self.lists.mkdir(exist_ok=True)
        if not self.lists_empty:
            (self.lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4").write_text("")
        self.log = self.base / "apt-calls.jsonl"
        config = self.base / "apt-config.json"
        config.write_text(json.dumps({
            "log": str(self.log), "bin": str(self.bin), "packages": self.packages, "broken": self.broken,
            "stale": self.stale, "update_fails": self.update_fails,
        }))
        apt_get = self.bin / "apt-get"
        apt_get.write_text(APT_GET.format(python=sys.executable))
        apt_get.chmod(0o755)
        self.config = config

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "APT_LISTS_DIR": str(self.lists),
            "STANDIN_APT_CONFIG": str(self.config),
            **extra,
        }

    def run(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 120,
            cwd: Path = REPO) -> subprocess.CompletedProcess:
        """argv in a private mount namespace where the `hide` directories are empty."""
        mount, unshare = shutil.which("mount"), shutil.which("unshare")
        assert mount and unshare, "util-linux (mount, unshare) is part of every Debian system"
        mounts = " && ".join(f"{mount} -t tmpfs standin-empty {d}" for d in self.hide) or "true"
        # not root: a user namespace where this user is root, so the mounts are allowed
        user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
        wrapped = [unshare, *user, "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                   f'{mounts} && exec "$@"', "sh", *argv]
        return subprocess.run(wrapped, env=env or self.env(), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd, check=False)

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def verbs(self) -> list[str]:
        return [next(a for a in c["argv"] if not a.startswith("-") and not a.startswith("DPkg::"))
                for c in self.calls()]
