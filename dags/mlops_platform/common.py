"""Light helpers every DAG uses (no provider import, no platform.json): the workspace path, cleanup
tasks and schema messages. The DAG arguments (`dag_args`, `dag_defaults`) are `PlatformConfig`
methods in `config`."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

PATH_FILTER = "mlops_path_segment"
# The run's own workspace directory, as the pod templates' subPathExpr expects it.
WORKSPACE_SUBPATH_TEMPLATE = "{{ dag.dag_id }}/{{ run_id | " + PATH_FILTER + " }}"
DEFAULT_OWNER = "mlops"
PART_OF_LABEL = {"app.kubernetes.io/part-of": "airflow-mlops", "app.kubernetes.io/managed-by": "airflow"}

# Trainer arguments that tag the MLflow run with the Airflow run it belongs to.
RUN_TAG_ARGS = ("--tag", "airflow.dag_id={{ dag.dag_id }}", "--tag", "airflow.run_id={{ run_id }}")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def path_segment(value: Any) -> str:
    """One safe path segment from any string (run ids contain ':' and '+').

    Keeps [A-Za-z0-9_.-], replaces every other run of characters with '-', never returns '',
    '.', '..' or a leading '.' or '-', and adds a short hash when characters were replaced so
    two run ids never share a directory. At most 120 characters; deterministic.
    """
    text = str(value)
    safe = _UNSAFE.sub("-", text).lstrip(".-") or "x"
    if safe != text:
        safe = f"{safe[:110]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return safe[:120]


def as_cleanup(task: Any) -> Any:
    """Make `task` a cleanup that runs whatever happened (`all_done`) without deciding the run.

    A plain `all_done` leaf would turn a failed run green: Airflow derives the run's state from
    its leaves. Marked as a teardown (without setups, keeping `all_done`), Airflow leaves it out
    of that decision, so the run fails when the work failed and the workspace is cleaned anyway.
    """
    task.trigger_rule = "all_done"
    task.is_teardown = True
    return task


def dotted_key(path: Sequence[Any]) -> str:
    """A JSON path as `a.b.0` (`(document)` for the root)."""
    return ".".join(str(p) for p in path) or "(document)"


def schema_problems(
    validator: Any, doc: Any, key: Callable[[Sequence[Any]], str] = dotted_key, limit: int | None = None
) -> str:
    """Every JSON-schema error of `doc` as `key 'a.b': message`, in path order, joined by '; '
    (at most `limit`); '' when `doc` is valid."""
    errors = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return "; ".join(f"key {key(e.absolute_path)!r}: {e.message}" for e in errors[:limit])


@functools.cache
def schema_validator(schema_file: str, error: type[Exception], beside: str) -> Any:
    """The JSON-schema validator of `schema_file` (cached per file), a schema the chart ships in the
    platform ConfigMap beside `beside`; a missing or unreadable schema raises `error` saying so."""
    import json
    from pathlib import Path

    import jsonschema

    name = Path(schema_file).name
    try:
        schema = json.loads(Path(schema_file).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(
            f"{schema_file} not found: the chart ships {name} beside {beside} in the same ConfigMap "
            f"(set MLOPS_PLATFORM_DIR to a directory holding both)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise error(f"{schema_file}: not valid JSON ({exc})") from None
    return jsonschema.validators.validator_for(schema)(schema)
