"""The kind scripts as programs: every one passes `bash -n` and shellcheck, kind-up and kind-down
are executable, and kind-up refuses an unknown argument with its usage."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import paths
from tests.support.kind import KIND_DIR, KIND_DOWN, KIND_UP

SHELL_FILES = [
    KIND_UP,
    KIND_DOWN,
    *sorted(KIND_DIR.glob("*.sh")),
    paths.IMAGES_DIR / "git-server" / "entrypoint.sh",
]


@pytest.mark.parametrize("script", SHELL_FILES, ids=lambda p: p.relative_to(paths.REPO).as_posix())
def test_bash_syntax(script: Path) -> None:
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(
    not shutil.which("shellcheck"), reason="shellcheck not installed (apt-get install shellcheck)"
)
def test_shellcheck_clean() -> None:
    proc = subprocess.run(
        ["shellcheck", "-x", *[str(s) for s in SHELL_FILES]], cwd=paths.REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_executables() -> None:
    for script in (KIND_UP, KIND_DOWN):
        assert os.access(script, os.X_OK), f"{script} must be executable"


def test_unknown_argument_prints_usage() -> None:
    proc = subprocess.run([str(KIND_UP), "--bogus"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr
