"""`make test-dags VALUES=<values files> DAGS=<folder>` (MLOPS_DAG_VALUES, MLOPS_DAG_FOLDER): a DAG
folder and values files of one's own, checked by the rule tests (tests/dags/policy.py); a file or
folder that is not there, or a values file the chart refuses, stops the run with one message that
names it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import paths
from tests.support.readme_examples import folder_with, readme_examples


def run_tests(values: str = "", folder: str = "", *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLOPS_DAG_VALUES": values, "MLOPS_DAG_FOLDER": folder}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/dags", "-p", "no:xdist", "-q", *args],
        cwd=paths.REPO, env=env, capture_output=True, text=True, timeout=1800,
    )


def test_a_values_file_that_is_not_there_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "my-values.yaml"
    proc = run_tests(str(missing), "", "--collect-only")
    assert proc.returncode == 4, proc.stdout[-2000:]
    assert f"make test-dags: VALUES: {missing}: no such values file" in proc.stderr, proc.stderr


def test_a_dag_folder_that_is_not_there_is_named(tmp_path: Path) -> None:
    proc = run_tests("", str(tmp_path / "my-dags"), "--collect-only")
    assert proc.returncode == 4
    assert f"make test-dags: DAGS: {tmp_path / 'my-dags'}: no such DAG folder" in proc.stderr, proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run_tests("", str(tmp_path / "empty"), "--collect-only")
    assert proc.returncode == 4
    assert "no DAG file (*.py) and no pipelines/*.yaml in it" in proc.stderr, proc.stderr


def test_a_values_file_the_chart_refuses_is_named_with_helms_reason(tmp_path: Path) -> None:
    bad = tmp_path / "my-values.yaml"
    bad.write_text(yaml.safe_dump({"pipelines": {"schedules": {"ml_inference": "every day"}}}))
    proc = run_tests(str(bad), "", "--collect-only")
    assert proc.returncode == 4, proc.stdout[-2000:]
    assert f"make test-dags: VALUES: {bad}: the chart does not render with this values file:" in proc.stderr
    assert "schedules" in proc.stderr.split("does not render", 1)[1], proc.stderr


def test_own_values_and_folder_run_the_rules_only(tmp_path: Path) -> None:
    """A folder with the README's example using a Secret, checked against a values file of one's own
    that allows it and schedules it: the rule tests pass (and only they run); against
    values/kind.yaml, which allows no Secret, the import fails naming the allow-list."""
    values = yaml.safe_load((paths.VALUES_DIR / "production.example.yaml").read_text())
    values["pipelines"]["schedules"] = {"my_pipeline": "0 3 * * *"}
    values["pipelines"]["dagIds"] = ["my_pipeline"]
    own = tmp_path / "my-values.yaml"
    own.write_text(yaml.safe_dump(values))
    (py,) = [n for n in readme_examples() if n.endswith(".py")]
    code = readme_examples()[py].replace(
        'image=cfg.image("trainer", "1.2.3"))',
        'image=cfg.image("trainer", "1.2.3"), secret_env={"HF_TOKEN": "hf-token/token"})',
    )
    assert "secret_env" in code
    folder = folder_with(tmp_path, {py: code})
    selection = ("-k", "test_dag_file_imports or test_every_scheduled_dag_exists", "-rA")
    proc = run_tests(str(own), str(folder), *selection)
    assert proc.returncode == 0, proc.stdout[-4000:]
    passed = [line for line in proc.stdout.splitlines() if line.startswith("PASSED")]
    assert any(f"{own}-my_pipeline.py" in line or f"my_pipeline.py-{own}" in line for line in passed), passed
    assert any("test_every_scheduled_dag_exists" in line for line in passed), passed
    assert "deselected" in proc.stdout.splitlines()[-1]

    proc = run_tests("values/kind.yaml", str(folder), "-k", "test_dag_file_imports and my_pipeline")
    assert proc.returncode == 1, proc.stdout[-4000:]
    assert "'hf-token/token', not in the chart's pipelines.secrets allow-list" in proc.stdout, proc.stdout[-4000:]
