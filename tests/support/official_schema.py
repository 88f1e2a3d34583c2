"""The official Airflow chart 1.20.0's values.schema.json, and the `airflow:` block of a values
file checked against it (our umbrella passes that block to the official chart)."""

from __future__ import annotations

import functools
import json
import tarfile
from typing import Any

import jsonschema

from . import paths


@functools.cache
def official_schema() -> tuple[dict[str, Any], str] | None:
    """The official chart's values.schema.json: from the downloaded subchart, else the reference copy."""
    if paths.SUBCHART_DIR.is_dir():
        for tgz in sorted(paths.SUBCHART_DIR.glob("airflow-*.tgz")):
            with tarfile.open(tgz) as tar:
                try:
                    member = tar.extractfile("airflow/values.schema.json")
                except KeyError:
                    continue
                if member:
                    return json.load(member), str(tgz)
    ref = paths.REFERENCE_DIR / "values.schema.json"
    if ref.exists():
        return json.loads(ref.read_text()), str(ref)
    return None


def airflow_errors(values: dict[str, Any]) -> list[str]:
    """Readable schema errors for the `airflow:` block (our `enabled` key is Helm's condition)."""
    schema = official_schema()
    assert schema is not None
    block = dict(values.get("airflow") or {})
    block.pop("enabled", None)
    validator = jsonschema.Draft7Validator(schema[0])
    errors = []
    for err in sorted(validator.iter_errors(block), key=lambda e: list(e.absolute_path)):
        where = ".".join(["airflow", *(str(p) for p in err.absolute_path)])
        errors.append(f"{where}: {err.message}")
    return errors
