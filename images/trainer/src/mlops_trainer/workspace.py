"""The run workspace: one directory per pipeline run, shared by its steps."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import WorkspaceError

# Which step writes which hand-over file, so an error can say what to run first.
STATE_FILES = {
    "prepare": "prepare.json",
    "train": "train.json",
    "evaluate": "evaluate.json",
    "register": "register.json",
}


class Workspace:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = Path(root)
        if not path.exists():
            raise WorkspaceError(
                f"workspace {path} does not exist (the pipeline mounts it at /workspace with a "
                "per-run sub-path; locally create the directory first)"
            )
        if not path.is_dir():
            raise WorkspaceError(f"workspace {path} is not a directory")
        if not os.access(path, os.W_OK):
            raise WorkspaceError(f"workspace {path} is not writable by uid {os.getuid()}")
        self.root = path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def train_csv(self) -> Path:
        return self.data_dir / "train.csv"

    @property
    def test_csv(self) -> Path:
        return self.data_dir / "test.csv"

    def read_state(self, step: str, needed_by: str) -> dict[str, Any]:
        """The hand-over file of `step`; a clear error when that step has not run."""
        path = self.root / STATE_FILES[step]
        if not path.is_file():
            raise WorkspaceError(
                f"`{needed_by}` needs the output of `{step}`, but {path} does not exist: "
                f"run `mlops-trainer {step} --workspace {self.root}` first"
            )
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise WorkspaceError(f"{path} is not valid JSON ({exc}); re-run `{step}`") from exc

    def write_state(self, step: str, state: dict[str, Any]) -> Path:
        """Write atomically (temp file + rename), so a crash never leaves half a file."""
        path = self.root / STATE_FILES[step]
        write_atomic(path, json.dumps(state, indent=2, sort_keys=True) + "\n")
        return path

    def clear_after(self, step: str) -> None:
        """Re-running a step invalidates the hand-over files of the steps after it."""
        names = list(STATE_FILES)
        for later in names[names.index(step) + 1 :]:
            (self.root / STATE_FILES[later]).unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
