"""`make` prints the help by default and lists every phony target with its `## help` line."""

from __future__ import annotations

import re
import subprocess

from tests.support import paths


def phony_targets() -> set[str]:
    text = (paths.REPO / "Makefile").read_text()
    names: set[str] = set()
    for line in re.findall(r"^\.PHONY:(.*)$", text, flags=re.M):
        names.update(line.split())
    return names - {"FORCE"}


def test_default_target_is_help_and_lists_every_target() -> None:
    out = subprocess.run(
        ["make", "--no-print-directory"], cwd=paths.REPO, capture_output=True, text=True, check=True
    ).stdout
    listed = set(re.findall(r"^\s+(?:\x1b\[\d+m)?([a-zA-Z0-9_.-]+)", out, flags=re.M))
    missing = phony_targets() - listed
    assert not missing, f"targets without a `## help` line: {sorted(missing)}"
    for line in out.splitlines()[1:]:
        assert "## " not in line, f"help text broken by a nested '## ': {line!r}"
