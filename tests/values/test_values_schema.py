"""Our values.schema.json: strict, documented, and in line with values.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support import paths
from tests.support.helm import HelmError, render_chart

SCHEMA = json.loads((paths.CHART_DIR / "files" / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((paths.CHART_DIR / "values.yaml").read_text())


def object_schemas(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if schema.get("type") == "object" or "properties" in schema:
        yield path or "<root>", schema
        for key, sub in (schema.get("properties") or {}).items():
            if path == "" and key in ("airflow", "global"):
                continue  # the official chart / Helm own these subtrees
            yield from object_schemas(sub, f"{path}.{key}" if path else key)


def test_schema_is_valid_draft7() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_defaults_validate_against_schema() -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(DEFAULTS)


@pytest.mark.parametrize(
    "path,schema", list(object_schemas(SCHEMA)), ids=lambda x: x if isinstance(x, str) else ""
)
def test_every_object_of_ours_is_strict_and_documented(path: str, schema: dict[str, Any]) -> None:
    if "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return  # free-form maps (labels, nodeSelector) type their values instead
    if schema.get("x-free-form"):
        return  # Kubernetes objects passed through (affinity, resources) are typed by Kubernetes
    assert schema.get("additionalProperties") is False, f"{path}: set additionalProperties: false"
    for key, sub in (schema.get("properties") or {}).items():
        assert sub.get("description"), f"{path}.{key}: missing description"
        assert "type" in sub or "$ref" in sub or "oneOf" in sub, f"{path}.{key}: missing type"


def test_unknown_nested_key_is_named_in_helm_error() -> None:
    with pytest.raises(HelmError) as excinfo:
        render_chart(values={"commonLabels": {"team": 3}})
    assert "commonLabels" in str(excinfo.value)


def test_kubernetes_definitions_are_generated_from_the_strict_schemas() -> None:
    """The k8s.* definitions (affinity, tolerations, resources, security contexts, env, selectors)
    are tools/schema/k8s_definitions.py's output: rerun it when kubernetes-validate changes."""
    import sys

    sys.path.insert(0, str(paths.REPO / "tools" / "schema"))
    try:
        import k8s_definitions
    finally:
        sys.path.pop(0)
    current = {k: v for k, v in SCHEMA["definitions"].items() if k.startswith("k8s.")}
    assert current == k8s_definitions.generate(), "run .venv/bin/python tools/schema/k8s_definitions.py"


def test_values_docs_are_written_once() -> None:
    """Schema descriptions and the README's object/array defaults are generated from the
    `## @param` lines and the values (tools/schema/params.py, run by `make docs`)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(paths.REPO / "tools" / "schema" / "params.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_object_defaults_in_the_readme_are_the_real_defaults() -> None:
    """gpu.nodeSelector, gpu.tolerations and profiles are not empty: the table says what they are."""
    readme = (paths.CHART_DIR / "README.md").read_text()
    rows = {
        line.split("|")[1].strip(): line.split("|")[3].strip()
        for line in readme.splitlines()
        if line.startswith("| `")
    }
    assert rows["`gpu.nodeSelector`"] == "`nvidia.com/gpu.present=true`"
    assert rows["`gpu.tolerations`"] == "`nvidia.com/gpu Exists NoSchedule`"
    assert rows["`profiles`"] == "`keys: cpu gpu-1 gpu-2 gpu-4 gpu-8`"


ROOT_SCHEMA = json.loads((paths.CHART_DIR / "values.schema.json").read_text())
ALLOWED_IN_ROOT = {"$schema", "$ref", "title", "description", "default", "examples", "deprecated",
                   "properties", "patternProperties", "definitions", "$defs", "items", "additionalProperties"}


def schema_nodes(node: dict, where: str = "$"):
    """Every schema node of a schema (not the maps of property names)."""
    yield where, node
    for key in ("properties", "patternProperties", "definitions", "$defs"):
        for name, sub in (node.get(key) or {}).items():
            yield from schema_nodes(sub, f"{where}.{key}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from schema_nodes(node[key], f"{where}.{key}")


def test_the_chart_root_schema_documents_every_value_and_holds_no_rule() -> None:
    """The root values.schema.json (editors, chart tools) is the annotations of files/values.schema.json:
    a rule there would make helm refuse first, in its own words, instead of the chart's sentences."""
    rules = {w: sorted(set(n) - ALLOWED_IN_ROOT) for w, n in schema_nodes(ROOT_SCHEMA) if set(n) - ALLOWED_IN_ROOT}
    assert not rules, rules
    full = {w for w, _ in schema_nodes(SCHEMA)}
    root = {w for w, _ in schema_nodes(ROOT_SCHEMA)}
    assert full == root, (sorted(full - root)[:5], sorted(root - full)[:5])
    described = {w for w, n in schema_nodes(SCHEMA) if "description" in n}
    assert described <= {w for w, n in schema_nodes(ROOT_SCHEMA) if "description" in n}
