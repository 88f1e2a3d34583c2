"""scripts/fresh-machine-check refuses bad arguments before it builds anything (the check itself
is slow and runs as `make fresh-machine-check`, not in `make test`)."""

from __future__ import annotations

import subprocess
import sys

from tests.support import paths

SCRIPT = str(paths.SCRIPTS_DIR / "fresh-machine-check")


def test_unknown_step_is_refused_naming_the_allowed_ones():
    proc = subprocess.run([sys.executable, SCRIPT, "--steps", "venv,everything"], capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("ERROR fresh-machine: --steps venv,everything: unknown everything (allowed: deps, "
                                   "tools, venv, venv-mlflow, system-packages, lint, test)")
    assert not (paths.REPO / ".cache" / "fresh-machine" / "run-unknown").exists()
