"""The repository speaks for itself: no user doc, comment or message points at the project's tracker
("issue 15 item 5"). A reference to another project's tracker names that project and its number
with `#` (for example "kind issue #3795") and is allowed."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import paths

# Our tracker's way of writing a reference: "issue 4", "Issue 15", "issues 21" (no `#`).
TRACKER_REFERENCE = re.compile(r"\b[Ii]ssues? [0-9]+\b")
# What the repository ships or documents (the official chart's unpacked copy and build output aside).
FOLDERS = ("charts", "values", "dags", "images", "scripts", "tools", "tests", "requirements", ".ci")
TOP_FILES = ("README.md", "Makefile", "pyproject.toml")
SKIPPED_PARTS = {"__pycache__", "node_modules", ".venv"}
SUFFIXES = {".md", ".py", ".yaml", ".yml", ".tpl", ".txt", ".json", ".sh", ".toml", ".cfg", ".go", ""}


def repository_texts() -> list[Path]:
    files = [paths.REPO / name for name in TOP_FILES]
    for folder in FOLDERS:
        for path in sorted((paths.REPO / folder).rglob("*")):
            rel = path.relative_to(paths.REPO).parts
            if not path.is_file() or path == Path(__file__).resolve() or SKIPPED_PARTS & set(rel) or rel[:3] == ("charts", "airflow-mlops", "charts"):
                continue
            if path.suffix in SUFFIXES or path.name == "Dockerfile":
                files.append(path)
    return files


def tracker_references(text: str) -> list[str]:
    return [m.group(0) for m in TRACKER_REFERENCE.finditer(text)]


def test_the_pattern_finds_our_references_and_not_other_projects() -> None:
    assert tracker_references("GPU headroom (issue 15 item 5): x; MLflow (Issue 4)") == ["issue 15", "Issue 4"]
    assert tracker_references("see item 3 of the list; issues are welcome") == []
    assert tracker_references('fail with "content digest" (kind issue #3795)') == []


def test_no_file_of_the_repository_points_at_the_tracker() -> None:
    files = repository_texts()
    assert len(files) > 100 and paths.REPO / "README.md" in files
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            for ref in tracker_references(line):
                found.append(f"{path.relative_to(paths.REPO)}:{lineno}: {ref!r}")
    assert not found, "tracker references (say what the text means instead):\n" + "\n".join(found)
