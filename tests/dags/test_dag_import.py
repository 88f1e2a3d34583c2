"""Every DAG file imports with zero errors, for each environment file the chart ships."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dags.policy import rule
from tests.support import paths
from tests.support.platform_env import (
    DAG_FILES,
    PlatformEnv,
    check_dag_file_imports,
    expected_dags,
    load_dagbag,
)


@rule("imports", "one-dag-per-file")
@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports(dag_file: Path, platform_env: PlatformEnv) -> None:
    check_dag_file_imports(dag_file, platform_env)


@rule("imports", "one-dag-per-file")
def test_the_folder_has_every_pipeline(dagbags) -> None:
    for name, bag in dagbags.items():
        assert bag.import_errors == {}, name
        assert set(bag.dags) == expected_dags(), name


THROWAWAY_DAG = '''
from airflow.sdk import DAG
from mlops_platform.config import load_platform
from mlops_platform.pods import pod_task, trainer_command

cfg = load_platform()
with DAG(**cfg.dag_args("throwaway_pipeline", scheduled=False), **cfg.dag_defaults()) as dag:
    pod_task("hello", trainer_command(cfg, "prepare", "--dataset", "iris"), profile=cfg.default_profile, cfg=cfg)
'''


def test_a_new_dag_file_is_covered_without_a_test_edit(tmp_path: Path, platform_envs) -> None:
    """Discovery: a DAG file dropped into (a copy of) the folder is expected, imported and parsed."""
    import shutil

    folder = tmp_path / "dags"
    shutil.copytree(paths.DAGS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "throwaway_pipeline.py").write_text(THROWAWAY_DAG)
    assert "throwaway_pipeline" in expected_dags(folder)
    bag = load_dagbag(folder, platform_envs["kind"])
    assert bag.import_errors == {}, "\n".join(bag.import_errors.values())
    assert set(bag.dags) == expected_dags(folder)
    assert [t.task_id for t in bag.dags["throwaway_pipeline"].tasks] == ["hello"]


def test_helper_package_is_not_parsed_as_dags() -> None:
    assert "mlops_platform/" in (paths.DAGS_DIR / ".airflowignore").read_text().splitlines()


@rule("serializes")
def test_dags_serialize(dagbags) -> None:
    """The DAG processor stores serialized DAGs: every DAG must round-trip."""
    from airflow.serialization.serialized_objects import SerializedDAG

    for bag in dagbags.values():
        for dag in bag.dags.values():
            restored = SerializedDAG.from_dict(json.loads(json.dumps(SerializedDAG.to_dict(dag))))
            assert {t.task_id for t in restored.tasks} == {t.task_id for t in dag.tasks}


def _bad_env(tmp_path: Path, content: str | None) -> PlatformEnv:
    if content is not None:
        (tmp_path / "platform.json").write_text(content)
        # The schema the chart ships beside platform.json.
        schema = paths.CHART_DIR / "files" / "platform.schema.json"
        (tmp_path / "platform.schema.json").write_text(schema.read_text())
    return PlatformEnv("bad", tmp_path, tmp_path, {}, {}, [])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "platform.json not found"),
        ("{not json", "not valid JSON"),
        (json.dumps({"schemaVersion": 2}), "schemaVersion 2 is not supported"),
        (json.dumps({"schemaVersion": 1, "profiles": {}}), "key 'profiles': {} should be non-empty"),
        (
            json.dumps(
                {"schemaVersion": 1, "profiles": {"cpu": {"gpus": 0, "podTemplateFile": "/t/cpu.yaml"}}}
            ),
            "is a required property",
        ),
    ],
    ids=["missing", "not-json", "schema-version", "no-profiles", "missing-key"],
)
def test_missing_or_invalid_platform_json_is_a_clear_import_error(tmp_path: Path, content, message) -> None:
    bag = load_dagbag(paths.DAGS_DIR / "ml_training.py", _bad_env(tmp_path, content))
    (error,) = bag.import_errors.values()
    assert "PlatformConfigError" in error and message in error
