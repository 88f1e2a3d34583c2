"""Values documentation written once: the `## @param` lines of values.yaml.

The `## @param <key> [modifiers] <description>` lines are the one source of each value's
description. From them and from the values themselves this tool writes:

- the `description` of the key's entry in values.schema.json (every @param key must exist
  there, typed; `airflow.*` keys other than ours are typed by the official chart's schema);
- the `[default: ...]` modifier of `[object]`/`[array]` parameters whose default is not
  empty, a short summary of the real default (@bitnami/readme-generator-for-helm would
  otherwise print `{}`/`[]` in the README tables, whatever the value).

It also writes the chart's root values.schema.json, the copy editors and chart tools read
(yaml-language-server, Artifact Hub, `helm show`): the same properties, descriptions, defaults
and references as files/values.schema.json, without any validation keyword. The chart applies
files/values.schema.json itself (templates/checks/_schema.tpl), so that every refusal reads as
a sentence; a rule in the root file would make helm refuse first, in its own words.

The README tables are then generated from values.yaml by tools/readme/readme (`make docs`
runs both). `--check` writes nothing and exits 1 listing every difference (tests and
`make lint` run it).

    python tools/schema/params.py            # rewrite schema descriptions and default modifiers
    python tools/schema/params.py --check
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "airflow-mlops"
VALUES_FILE = CHART / "values.yaml"
SCHEMA_FILE = CHART / "files" / "values.schema.json"
ROOT_SCHEMA_FILE = CHART / "values.schema.json"
# what the root copy keeps of each schema node; sub-schemas under these keys are projected too
ANNOTATIONS = ("$schema", "$ref", "title", "description", "default", "examples", "deprecated")
SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs")
SUBSCHEMAS = ("items", "additionalProperties")

PARAM_RE = re.compile(r"^(?P<indent>\s*)## @param (?P<key>\S+)(?: \[(?P<mods>[^\]]*)\])?(?: (?P<desc>.*))?$")
MISSING = object()


def lookup(values: Any, key: str) -> Any:
    cur = values
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return MISSING
        cur = cur[part]
    return cur


def _scalar(v: Any) -> str:
    if isinstance(v, list):
        return " ".join(_scalar(x) for x in v)
    return json.dumps(v) if not isinstance(v, str) else v


def summary(value: Any) -> str:
    """A short, comma-free rendering of a non-empty default (the generator splits on commas)."""
    if isinstance(value, dict):
        leaves = dict(_leaves(value))
        text = "; ".join(f"{k}={_scalar(v)}" for k, v in leaves.items())
        nested = any(
            isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v) for v in leaves.values()
        )
        if len(text) > 120 or nested:
            text = "keys: " + " ".join(str(k) for k in value)
    elif all(isinstance(v, dict) for v in value):
        if all("name" in v for v in value):
            text = "; ".join(str(v["name"]) for v in value)
        elif all("key" in v or "operator" in v for v in value):  # tolerations
            text = "; ".join(
                " ".join(str(v[k]) for k in ("key", "operator", "value", "effect") if k in v) for v in value
            )
        else:
            text = f"{len(value)} items (see values.yaml)"
    else:
        text = " ".join(_scalar(v) for v in value)
        if len(text) > 120:
            text = f"{len(value)} items (see values.yaml)"
    text = text.replace(",", ";").replace("]", ")").replace("[", "(")
    return text if len(text) <= 120 else text[:117] + "..."


def _leaves(value: dict[str, Any], prefix: str = ""):
    for k, v in value.items():
        if isinstance(v, dict) and v:
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def schema_entry(schema: dict[str, Any], key: str) -> dict[str, Any] | None:
    cur = schema
    for part in key.split("."):
        props = cur.get("properties") or {}
        if part not in props:
            return None
        cur = props[part]
    return cur


def annotations_only(node: Any) -> Any:
    """The schema node without its validation keywords (see the module docstring)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {k: node[k] for k in ANNOTATIONS if k in node}
    for key in SUBSCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            out[key] = {name: annotations_only(sub) for name, sub in node[key].items()}
    for key in SUBSCHEMAS:
        if isinstance(node.get(key), dict):
            out[key] = annotations_only(node[key])
    return out


def root_schema(schema: dict[str, Any]) -> str:
    root = annotations_only(schema)
    root["description"] = (
        "The airflow-mlops chart's values: properties, descriptions and defaults for editors and chart "
        "tools. The rules live in files/values.schema.json, which the chart applies itself at render "
        "time (every refusal reads as a sentence naming the key, the value and what is allowed)."
    )
    return json.dumps(root, indent=2) + "\n"


def process(write: bool) -> list[str]:
    lines = VALUES_FILE.read_text().splitlines(keepends=True)
    values = yaml.safe_load("".join(lines))
    schema_text = SCHEMA_FILE.read_text()
    schema = json.loads(schema_text)
    problems: list[str] = []
    new_lines = []
    for line in lines:
        m = PARAM_RE.match(line.rstrip("\n"))
        if not m:
            new_lines.append(line)
            continue
        key, desc = m["key"], (m["desc"] or "").strip()
        mods = [x.strip() for x in (m["mods"] or "").split(",") if x.strip()]
        value = lookup(values, key)
        if value is MISSING:
            problems.append(f"values.yaml: @param {key}: no such value")
        kept = [x for x in mods if not x.startswith("default:")]
        if ("object" in kept or "array" in kept) and isinstance(value, (dict, list)) and value:
            kept.append(f"default: {summary(value)}")
        if kept != mods:
            problems.append(f"values.yaml: @param {key}: modifiers {mods} should be {kept}")
        mod_text = f" [{', '.join(kept)}]" if kept else ""
        new_lines.append(f"{m['indent']}## @param {key}{mod_text} {desc}\n")
        entry = schema_entry(schema, key)
        if entry is None and key.startswith("airflow."):
            pass  # the official chart's own values.schema.json types and documents these
        elif entry is None:
            problems.append(f"values.schema.json: no property for @param {key}")
        elif entry.get("description") != desc:
            problems.append(f"values.schema.json: {key}: description differs from the @param line")
            entry["description"] = desc
    root = root_schema(schema)
    if not ROOT_SCHEMA_FILE.is_file() or ROOT_SCHEMA_FILE.read_text() != root:
        problems.append("values.schema.json (chart root): not the annotations of files/values.schema.json")
    if write:
        VALUES_FILE.write_text("".join(new_lines))
        SCHEMA_FILE.write_text(json.dumps(schema, indent=2) + "\n")
        ROOT_SCHEMA_FILE.write_text(root)
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on any difference")
    args = parser.parse_args()
    problems = process(write=not args.check)
    if args.check and problems:
        print("\n".join(problems), file=sys.stderr)
        print("docs: run `make docs` (tools/schema/params.py) and commit", file=sys.stderr)
        return 1
    missing = [p for p in problems if "no such value" in p or "no property" in p]
    if missing:
        print("\n".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
