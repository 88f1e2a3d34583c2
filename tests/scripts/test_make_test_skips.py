"""Inside `make test` (MLOPS_MAKE_TEST=1) a skip fails; by hand it stays a skip
(tests/support/make_test.py, registered by tests/conftest.py). Run on a throwaway test folder
with a real pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.support import paths

CONFTEST = f"""
import sys
sys.path.insert(0, {str(paths.REPO)!r})
from tests.support.make_test import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401

def pytest_configure(config):
    config.addinivalue_line("markers", "kind: by hand")
    config.addinivalue_line("markers", "machine_may_differ: may skip")
"""

TESTS = '''
import pytest

def test_prerequisite_missing():
    pytest.skip("no PostgreSQL here")

@pytest.mark.skipif(True, reason="needs a tool that is not installed")
def test_skipif_prerequisite():
    pass

@pytest.mark.kind
def test_kind_by_hand():
    pytest.skip("no kind cluster")

@pytest.mark.machine_may_differ
def test_machine_has_gpus():
    pytest.skip("this machine has NVIDIA device files")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False

def test_runs():
    pass
'''

MODULE_SKIP = '''
import pytest
pytest.skip(".venv-mlflow is not built", allow_module_level=True)

def test_never_collected():
    pass
'''


def outcomes(folder: Path, make_test: bool) -> dict[str, str]:
    """test name (or file, for a collection report) -> passed | failed | skipped | xfail | error."""
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_MAKE_TEST"}
    if make_test:
        env["MLOPS_MAKE_TEST"] = "1"
    report = folder / f"report-{make_test}.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-o", "addopts=", "--continue-on-collection-errors", f"--junitxml={report}", "."],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False)
    found = {}
    for case in ElementTree.parse(report).iter("testcase"):
        name = case.get("name") or ""
        tags = {child.tag: child for child in case}
        if "skipped" in tags:
            state = "xfail" if tags["skipped"].get("type") == "pytest.xfail" else "skipped"
        else:
            state = next((t for t in ("failure", "error") if t in tags), "passed")
        found[name] = state
    assert found, proc.stdout + proc.stderr
    return found


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("skips")
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_cases.py").write_text(TESTS)
    (root / "test_module_skip.py").write_text(MODULE_SKIP)
    return root


def test_inside_make_test_a_missing_prerequisite_fails(folder: Path) -> None:
    got = outcomes(folder, make_test=True)
    assert got == {
        "test_prerequisite_missing": "failure",
        "test_skipif_prerequisite": "error",  # a skipif mark skips in setup: the setup fails
        "test_kind_by_hand": "skipped",
        "test_machine_has_gpus": "skipped",
        "test_expected_failure": "xfail",
        "test_runs": "passed",
        "test_module_skip": "error",  # a module-level skip: the collection fails
    }, got


def test_by_hand_skips_stay_skips(folder: Path) -> None:
    got = outcomes(folder, make_test=False)
    assert got["test_prerequisite_missing"] == got["test_skipif_prerequisite"] == "skipped", got
    assert got["test_module_skip"] == "skipped", got
    assert got["test_runs"] == "passed", got
