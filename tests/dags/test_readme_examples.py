"""dags/README.md, "Write your own pipeline": its example files, dropped unchanged into a copy of
the DAG folder, pass the same checks as any DAG folder (`make test-dags DAGS=<that copy>`: every
test marked with a rule of tests/dags/policy.py, for values/kind.yaml and
values/production.example.yaml), so the README and the rules cannot drift apart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dags.policy import rule_uses
from tests.support import paths
from tests.support.readme_examples import folder_with, readme_examples


def run_folder_checks(folder: Path, *pytest_args: str) -> subprocess.CompletedProcess:
    """`make test-dags DAGS=<folder>` without make: the rule tests against that folder."""
    env = {**os.environ, "MLOPS_DAG_FOLDER": str(folder), "MLOPS_DAG_VALUES": ""}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/dags", "-p", "no:xdist", "-q", "-x", *pytest_args],
        cwd=paths.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


def test_the_readme_has_a_python_and_a_yaml_example() -> None:
    files = readme_examples()
    assert sorted(Path(name).suffix for name in files) == [".py", ".yaml"], sorted(files)


def test_the_readme_examples_pass_the_dag_folder_checks(tmp_path: Path) -> None:
    files = readme_examples()
    folder = folder_with(tmp_path, files)
    proc = run_folder_checks(folder, "-rA")
    assert proc.returncode == 0, f"README examples {sorted(files)} fail the DAG folder checks:\n{proc.stdout[-6000:]}"
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "deselected" in summary and "failed" not in summary, summary
    passed = [line for line in proc.stdout.splitlines() if line.startswith("PASSED")]
    # The examples were what was checked: the per-file tests ran on the Python example, the
    # folder tests saw both DAGs, and every rule's tests ran.
    for name in files:
        if name.endswith(".py"):
            assert any(re.search(rf"test_dag_file_imports\[[^\]]*{re.escape(name)}", line) for line in passed), passed
    ran = {re.sub(r"\[.*", "", line.split()[1]).removeprefix("tests/dags/") for line in passed}
    marked = {test for tests in rule_uses().values() for test in tests}
    assert marked and marked <= ran, f"rule tests that did not run: {sorted(marked - ran)}"


def _broken(change: tuple[str, str]) -> tuple[str, str]:
    files = readme_examples()
    (py,) = [n for n in files if n.endswith(".py")]
    broken, count = re.subn(change[0], lambda _: change[1], files[py])
    assert count == 1, f"the README example no longer has {change[0]!r}"
    return py, broken


def test_a_broken_example_fails_the_same_checks(tmp_path: Path, platform_envs) -> None:
    """The checks can fail: the Python example without its doc_md fails the `doc` rule's test; with
    a Secret that values/kind.yaml does not allow (what the README says not to do) it does not
    import there. (In-process: the same test functions, on a folder with the broken file.)"""
    from tests.dags.policy import check_documented as test_every_dag_is_documented
    from tests.support.platform_env import check_dag_file_imports as test_dag_file_imports
    from tests.support.platform_env import load_dagbag

    py, no_doc = _broken((r"    doc_md=__doc__,[^\n]*\n", ""))
    folder = folder_with(tmp_path / "no-doc", {py: no_doc})
    bags = {name: load_dagbag(folder / py, env) for name, env in platform_envs.items()}
    assert all(bag.import_errors == {} for bag in bags.values())
    with pytest.raises(AssertionError, match=r"80 characters or fewer"):
        test_every_dag_is_documented(bags)

    py, with_secret = _broken(
        (r"image=cfg\.image\(\"trainer\", \"1\.2\.3\"\)\)", 'image=cfg.image("trainer", "1.2.3"), secret_env={"HF_TOKEN": "hf-token/token"})')
    )
    folder = folder_with(tmp_path / "secret", {py: with_secret})
    test_dag_file_imports(folder / py, platform_envs["production.example"])
    with pytest.raises(AssertionError, match=r"'hf-token/token', not in the chart's pipelines.secrets allow-list"):
        test_dag_file_imports(folder / py, platform_envs["kind"])
