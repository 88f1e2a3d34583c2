"""Every DAG file imports with zero errors, for each environment file the chart ships."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import paths
from tests.support.platform_env import DAG_FILES, PlatformEnv, load_dagbag

EXPECTED_DAGS = {
    "ml_training",
    "ml_serving",
    "run_job",
    "gpu_sweep",
    "gpu_sweep_basecommand",
    "ml_inference",
    "nfs_dataset_example",
}


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports(dag_file: Path, platform_env: PlatformEnv) -> None:
    bag = load_dagbag(dag_file, platform_env)
    assert bag.import_errors == {}, "\n".join(bag.import_errors.values())
    assert len(bag.dags) == 1, f"{dag_file.name}: one DAG per file, got {sorted(bag.dags)}"
    assert next(iter(bag.dags)) == dag_file.stem, "the DAG id is the file name"


def test_the_folder_has_every_pipeline(dagbags) -> None:
    for name, bag in dagbags.items():
        assert bag.import_errors == {}, name
        assert set(bag.dags) == EXPECTED_DAGS, name


def test_helper_package_is_not_parsed_as_dags() -> None:
    assert "mlops_platform/" in (paths.DAGS_DIR / ".airflowignore").read_text().splitlines()


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
