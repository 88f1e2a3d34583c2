"""Programs from Debian packages for the tests: found, or installed by scripts/ensure-apt-packages
(the repository's one installer of Debian packages: root + apt-get), or ProgramUnavailable with
that script's reason. `make system-packages` (part of `make test`) installs them all first, so in
`make test` a program that cannot be installed stops the run there, before any tier."""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.support.paths import SCRIPTS_DIR

SBIN_DIRS = ("/usr/sbin", "/sbin")


class ProgramUnavailable(RuntimeError):
    """The program is missing and could not be installed here (the message says why)."""


def find(command: str) -> str | None:
    if command.startswith("/"):
        return command if os.access(command, os.X_OK) else None
    return shutil.which(command, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS]))


def ensure(command: str, package: str, timeout: float = 900) -> str:
    """The path of `command` (a name, or an absolute path), installing `package` when missing."""
    found = find(command)
    if found:
        return found
    proc = subprocess.run([str(SCRIPTS_DIR / "ensure-apt-packages"), f"{command}={package}"], check=False,
                          timeout=timeout, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    found = find(command)
    if proc.returncode != 0 or not found:
        lines = proc.stderr.strip().splitlines()
        raise ProgramUnavailable(lines[-1] if lines else f"{command} ({package}) still missing after the install")
    return found
