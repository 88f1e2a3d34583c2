"""No test module imports another test module: what tests share lives in tests/support (or a
folder's conftest.py), so a test module can move, be renamed or run alone."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import paths


def imported_test_modules(path: Path) -> list[str]:
    """``module:line`` of every import of a tests/**/test_*.py module in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "tests" and any(p.startswith("test_") for p in parts[1:]):
                found.append(f"{name}:{node.lineno}")
    return found


def test_the_guard_sees_both_import_forms(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from tests.cluster import test_guide\nimport tests.chart.test_render as r\n"
                      "from tests.support import guide\n")
    assert imported_test_modules(sample) == ["tests.cluster.test_guide:1", "tests.chart.test_render:2"]


def test_no_test_module_imports_a_test_module() -> None:
    offenders = {}
    for path in sorted((paths.REPO / "tests").rglob("*.py")):
        if found := imported_test_modules(path):
            offenders[str(path.relative_to(paths.REPO))] = found
    assert not offenders, f"move what they share into tests/support: {offenders}"
