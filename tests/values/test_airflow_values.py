"""The `airflow:` block of every values file validates against the official 1.20.0 schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support import paths
from tests.support.official_schema import airflow_errors, official_schema

VALUES_FILES = paths.values_files() + [paths.CHART_DIR / "values.yaml"]


_SCHEMA = official_schema()
needs_schema = pytest.mark.skipif(
    _SCHEMA is None,
    reason=(
        "official Airflow chart 1.20.0 schema unavailable: neither the downloaded subchart "
        f"nor {paths.REFERENCE_DIR}/values.schema.json exists"
    ),
)


@needs_schema
@pytest.mark.parametrize("values_file", VALUES_FILES, ids=lambda p: p.relative_to(paths.REPO).as_posix())
def test_airflow_block_matches_official_schema(values_file: Path) -> None:
    values = yaml.safe_load(values_file.read_text()) or {}
    errors = airflow_errors(values)
    assert not errors, f"{values_file}: airflow block rejected by {_SCHEMA[1]}:\n" + "\n".join(errors)


@needs_schema
def test_bad_airflow_values_are_rejected_with_a_readable_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad-values.yaml"
    bad.write_text("airflow:\n  executor: 42\n  registry:\n    secretNames: [nexus]\n")
    errors = airflow_errors(yaml.safe_load(bad.read_text()))
    text = "\n".join(errors)
    assert "airflow.executor: 42 is not of type 'string'" in text
    # chart 1.20.0 has no registry.secretNames: pull secrets go to top-level imagePullSecrets
    assert "airflow.registry: Additional properties are not allowed ('secretNames' was unexpected)" in text


@needs_schema
def test_schema_source_is_reported() -> None:
    assert _SCHEMA is not None
    assert _SCHEMA[0]["properties"]["executor"]["type"] == "string"
    print(f"official schema taken from {_SCHEMA[1]}")
