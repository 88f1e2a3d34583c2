"""Every file the user docs name exists: a README sentence that says which test proves a claim
must name a test that is there. Checked: backticked repository paths (`tests/...`, `scripts/...`,
`dags/...`, `charts/...`, `values/...`, `images/...`, `tools/...`, with an optional `::name` that
must be defined in that file) and backticked test file names (`test_x.py`, found under tests/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import paths

DOCS = [paths.REPO / "README.md", paths.CHART_DIR / "README.md", paths.VALUES_DIR / "README.md",
        paths.REPO / "dags" / "README.md", paths.REPO / "images" / "README.md"]
TOP = ("tests", "scripts", "dags", "charts", "values", "images", "tools", "requirements")
PATH_RE = re.compile(r"`((?:" + "|".join(TOP) + r")/[A-Za-z0-9_./*-]*?)(?:::([A-Za-z_][A-Za-z0-9_]*))?`")
TEST_FILE_RE = re.compile(r"`(test_[a-z0-9_]+\.py)`")
# files the docs tell the user to create
USERS_FILES = {"values/production.yaml"}


def references(text: str) -> tuple[list[tuple[str, str | None]], list[str]]:
    return ([(m[1], m[2]) for m in PATH_RE.finditer(text)], [m[1] for m in TEST_FILE_RE.finditer(text)])


def test_the_reference_patterns_see_paths_names_and_test_files() -> None:
    paths_found, files = references("`tests/cluster/test_x.py::test_y`, `scripts/cluster-up`, `test_z.py`, `x/y`")
    assert paths_found == [("tests/cluster/test_x.py", "test_y"), ("scripts/cluster-up", None)]
    assert files == ["test_z.py"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(paths.REPO)))
def test_every_named_file_exists(doc: Path) -> None:
    found, test_files = references(doc.read_text())
    missing = []
    for ref, name in found:
        if "*" in ref or "<" in ref or ref in USERS_FILES:
            continue  # a pattern (`ci/*-values.yaml`), not one file
        target = paths.REPO / ref.rstrip("/")
        if not target.exists():
            missing.append(ref)
        elif name and target.is_file() and not re.search(rf"^\s*(?:async )?(?:def|class) {name}\b|^{name} = ",
                                                          target.read_text(), re.M):
            missing.append(f"{ref}::{name}")
    known = {p.name for p in (paths.REPO / "tests").rglob("test_*.py")}
    missing += [f for f in test_files if f not in known]
    assert not missing, f"{doc.name} names what is not there: {sorted(set(missing))}"
