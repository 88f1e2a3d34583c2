"""YAML pipelines: `dags/pipelines/<dag_id>.yaml` -> DAGs built by dag-factory on the platform's helpers.

A file holds one DAG in dag-factory's layout (the top-level key is the DAG id, equal to the file
name) with a strict, smaller set of keys (`PIPELINE_SCHEMA`: unknown keys are refused). Each task
names a profile, optionally an image `<name>:<tag>` of the platform registry, a command (an
argument list), env, Secret env, a time limit, dependencies; DAG-level params are declared with
the platform's Param kinds. The file is validated here (JSON schema, then what a schema cannot
say: the profile exists in platform.json, the image is inside the registry and pinned, the
Secret references are allow-listed, the dependencies name tasks of the file and have no cycle),
then translated into dag-factory's config where every task is a `MlopsPodOperator` with the
keyword arguments of `pods.pod_task_kwargs()`: the pod template, pool and pool slots, labels,
security and pod-build checks of a Python `pod_task()`. dag-factory's `DagBuilder` builds the DAG.

Errors: `YamlPipelineError` names the file, the task and the key. `load_pipelines()` builds every
file it can; the files it cannot build are reported through one stand-in DAG whose validation
raises: Airflow's DagBag then records an import error for the loader file (message: every bad
file, task and key) and keeps the DAGs of the good files and of every other DAG file.

Not from dag-factory's own loader (`load_yaml_dags`): it reads files with
`os.path.expandvars` and PyYAML's FullLoader (`__type__` keys import any class), looks for
`defaults.yml` files up the DAG folder, and only logs a file that fails. Here the files are read
with `yaml.safe_load`, nothing is inherited from other files, and failures are import errors.
dag-factory tags its DAGs `dagfactory`; its plugin sends usage telemetry for DAG runs of DAGs
with that tag, so the tag is removed (the chart also sets `[dag_factory] enable_telemetry = False`).
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from .config import PlatformConfig, load_platform, start_date
from .names import ENV_NAME, IDENTIFIER, IMAGE_NAME, IMAGE_TAG, check_env_name, excerpt
from .templates import TemplateNotAllowed, check_yaml_template, yaml_allowed_text

PIPELINES_DIR = "pipelines"
SUFFIX = ".yaml"
OPERATOR = "mlops_platform.pods.MlopsPodOperator"
ID_PATTERN = IDENTIFIER.pattern
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
MIN_TIMEOUT, MAX_TIMEOUT = 60, 7 * 24 * 3600
# Added to a task's time limit for its execution_timeout: the wait for a node and image pull.
EXECUTION_MARGIN = timedelta(hours=1)
PARAM_KINDS = ("dataset", "model_type", "model_name", "relative_path", "string", "integer")

# Bounds of one file (each file is read and checked under its own bounds, dags/README.md).
MAX_FILE_BYTES = 64 * 1024
MAX_DEPTH = 12  # nesting of YAML collections (a pipeline needs 6)
MAX_NODES = 20_000  # YAML nodes after alias expansion (the shipped files have < 200)
MAX_SECONDS = 5.0  # reading + checking + building one file; a slower file is refused, the others still load
MAX_ERROR_CHARS = 2000  # of one file's error message
# A string param's `pattern`: the safe subset (see _check_pattern).
MAX_PATTERN_CHARS = 255
MAX_PATTERN_REPEATS = 3
STRING_PARAM_MAX = 128

_STRING = {"type": "string", "not": {"type": "string", "pattern": r"[\x00-\x08\x0b-\x1f\x7f]"}}


def _text(max_length: int) -> dict[str, Any]:
    """A string of at most `max_length` characters without control characters (tab, newline allowed)."""
    return {**_STRING, "maxLength": max_length}


PIPELINE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "propertyNames": IDENTIFIER.schema(),
    "additionalProperties": {
        "type": "object",
        "additionalProperties": False,
        "required": ["tasks"],
        "properties": {
            "description": _text(500),
            "doc_md": _text(20000),
            "tags": {
                "type": "array",
                "maxItems": 20,
                "items": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_.-]{0,49}$", "not": _STRING["not"]},
            },
            "params": {
                "type": "object",
                "maxProperties": 32,
                "propertyNames": IDENTIFIER.schema(),
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["kind", "default"],
                    "properties": {
                        "kind": {"enum": list(PARAM_KINDS)},
                        "default": {"type": ["string", "integer"], "maxLength": STRING_PARAM_MAX},
                        "description": _text(500),
                        "enum": {"type": "array", "minItems": 1, "maxItems": 100, "items": _text(STRING_PARAM_MAX)},
                        "pattern": _text(MAX_PATTERN_CHARS),
                        "minimum": {"type": "integer"},
                        "maximum": {"type": "integer"},
                    },
                },
            },
            "tasks": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 100,
                "propertyNames": IDENTIFIER.schema(),
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["profile", "command"],
                    "properties": {
                        "profile": _text(63),
                        "image": _text(257),
                        "command": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 256,
                            "items": {**_text(8192), "minLength": 1},
                        },
                        "env": {
                            "type": "object",
                            "maxProperties": 64,
                            "propertyNames": ENV_NAME.schema(),
                            "additionalProperties": _text(4096),
                        },
                        "secret_env": {
                            "type": "object",
                            "maxProperties": 32,
                            "propertyNames": ENV_NAME.schema(),
                            "additionalProperties": _text(253 + 1 + 253),
                        },
                        "timeout_seconds": {"type": "integer", "minimum": MIN_TIMEOUT, "maximum": MAX_TIMEOUT},
                        "dependencies": {"type": "array", "uniqueItems": True, "maxItems": 100, "items": _text(63)},
                        "retries": {"type": "integer", "minimum": 1, "maximum": 10},
                        "cleanup": {"type": "boolean"},
                        "cpu": {"type": "string", "maxLength": 32, "pattern": QUANTITY_PATTERN, "not": _STRING["not"]},
                        "memory": {"type": "string", "maxLength": 32, "pattern": QUANTITY_PATTERN, "not": _STRING["not"]},
                    },
                },
            },
        },
    },
}


class YamlPipelineError(ValueError):
    """A YAML pipeline file is malformed or unsafe; the message names the file, task and key."""


def pipelines_dir(dags_dir: str | Path) -> Path:
    return Path(dags_dir) / PIPELINES_DIR


def _entries(dags_dir: str | Path) -> tuple[list[Path], list[str]]:
    """(pipeline files, errors): regular `*.yaml` files of the folder; every other entry (another
    extension such as `.yml`, a symlink, a directory) is an error naming it, so no second file
    can define or shadow a DAG id and nothing outside the folder is ever read."""
    folder = pipelines_dir(dags_dir)
    if folder.is_symlink():
        return [], [f"{PIPELINES_DIR}/: a symlink; the pipelines folder must be a directory of the DAG folder"]
    if not folder.is_dir():
        return [], []
    files, errors = [], []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if name.startswith(".") or name == "__pycache__":
            continue
        try:
            mode = entry.lstat().st_mode
        except OSError as exc:
            errors.append(f"{_shown(name)}: not readable ({exc.strerror})")
            continue
        if stat.S_ISLNK(mode):
            errors.append(f"{_shown(name)}: a symlink; pipeline files must be regular files of {PIPELINES_DIR}/")
        elif not name.endswith(SUFFIX) or not stat.S_ISREG(mode):
            errors.append(
                f"{_shown(name)}: not a pipeline file; {PIPELINES_DIR}/ holds only regular `<dag_id>{SUFFIX}` files"
                + (" (rename it to .yaml, one file per DAG id)" if name.endswith((".yml", ".YAML", ".YML")) else "")
            )
        else:
            files.append(entry)
    return files, errors


def _shown(name: str) -> str:
    """A file name as shown in a message (control characters escaped, bounded)."""
    text = name.encode("unicode_escape").decode("ascii")
    return text if len(text) <= 120 else text[:120] + "..."


def pipeline_files(dags_dir: str | Path) -> list[Path]:
    """The YAML pipeline files of a DAG folder, sorted (regular `*.yaml` files, no symlinks)."""
    return _entries(dags_dir)[0]


def _where(path: Path, task: str | None, key: str) -> str:
    return f"{_shown(path.name)}: " + (f"task {task!r}: " if task else "") + f"key {excerpt(key)[1:-1]!r}"


def _schema_error(path: Path, dag_id: str | None, error: Any) -> YamlPipelineError:
    """A jsonschema error as `file: task 't': key 'k': message` (the value shown bounded)."""
    parts = [str(p) for p in error.absolute_path]
    task = None
    if len(parts) >= 3 and parts[1] == "tasks":
        task, parts = parts[2], parts[3:]
    elif len(parts) >= 1 and parts[0] == dag_id:
        parts = parts[1:]
    if error.validator == "additionalProperties" and not error.validator_value:
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        key = ".".join([*parts, *extra[:1]]) or "(document)"
        return YamlPipelineError(f"{_where(path, task, key)}: unknown key; allowed: {', '.join(allowed)}")
    key = ".".join(parts) or "(document)"
    if parts and parts[-1] == "command" and error.validator == "type":
        message = "the command must be an argument list (YAML list of strings), never a shell string"
    else:
        message = _schema_message(error)
    return YamlPipelineError(f"{_where(path, task, key)}: {message}")


def _schema_message(error: Any) -> str:
    """What failed, with the value shown as a bounded excerpt (never the whole value)."""
    shown = excerpt(error.instance)
    value = error.validator_value
    what = {
        "type": lambda: f"must be of type {value}",
        "maxLength": lambda: f"longer than {value} characters",
        "minLength": lambda: "is empty",
        "maxItems": lambda: f"more than {value} items",
        "maxProperties": lambda: f"more than {value} entries",
        "pattern": lambda: f"does not match {value}",
        "not": lambda: "holds control characters" if "pattern" in value else "is not allowed",
        "enum": lambda: f"is not one of {excerpt(value, 200)}",
    }.get(error.validator, lambda: None)()
    if what is None:
        return error.message if len(error.message) <= 300 else error.message[:300] + "..."
    return f"{shown} {what}"


# libyaml's parser (C) when PyYAML has it, else the Python one: the same safe constructors.
_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """`yaml.safe_load` with bounds: duplicate keys, merge keys and non-string keys refused; the
    composed node graph is checked for depth and for its size with every alias expanded before
    any value is built (a YAML alias bomb is a small file whose expansion does not fit in
    memory). libyaml itself refuses nesting deeper than 1000 levels while parsing."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Refused(f"line {line}: merge keys (<<) are not allowed; write the keys out")
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise _Refused(
                    f"line {line}: key {excerpt(key)} is not a string (YAML reads unquoted yes/no/on/off/"
                    "true/false as booleans and digits as numbers): quote it"
                )
            if key in seen:
                raise _Refused(f"line {line}: key {excerpt(key)} appears twice in the same mapping")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    """A bound of the reader was exceeded (turned into a YamlPipelineError naming the file)."""


def _check_nodes(root: Any) -> None:
    """Depth at most MAX_DEPTH and at most MAX_NODES nodes with every alias expanded, computed
    over the shared node graph (each distinct node visited once; an alias is a shared node)."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    # Iterative post-order walk: (node, depth, children done?).
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if depth > MAX_DEPTH:
            raise _Refused(f"line {node.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
        children = _children(node)
        if not done:
            if id(node) in size:
                continue
            # A node on the current path (a recursive alias) counts as too big and too deep.
            size[id(node)], height[id(node)] = MAX_NODES + 1, MAX_DEPTH + 1
            stack.append((node, depth, True))
            stack.extend((c, depth + 1, False) for c in children)
            continue
        size[id(node)] = min(MAX_NODES + 1, 1 + sum(size[id(c)] for c in children))
        height[id(node)] = 1 + max((height[id(c)] for c in children), default=0)
    if size[id(root)] > MAX_NODES:
        raise _Refused(f"more than {MAX_NODES} YAML nodes once its aliases are expanded")
    if height[id(root)] > MAX_DEPTH:
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels once its aliases are expanded")


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _read_text(path: Path) -> str:
    """The file's text, at most MAX_FILE_BYTES, never through a symlink."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise _Refused("not a regular file")
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _Refused(f"larger than {MAX_FILE_BYTES // 1024} KiB")
    return data.decode("utf-8")


def load_yaml(text: str) -> Any:
    """One YAML document under the reader's bounds (raises _Refused or yaml.YAMLError)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_pipeline(path: Path, text: str | None = None) -> tuple[str, dict[str, Any]]:
    """(dag_id, DAG section) of one file, schema-checked; the DAG id must be the file name."""
    import jsonschema

    try:
        doc = load_yaml(_read_text(path) if text is None else text)
    except _Refused as exc:
        raise YamlPipelineError(f"{_shown(path.name)}: refused: {exc}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        detail = str(exc)
        raise YamlPipelineError(f"{_shown(path.name)}: not readable YAML ({detail[:500]})") from None
    if not isinstance(doc, dict) or len(doc) != 1:
        raise YamlPipelineError(
            f"{_shown(path.name)}: the file holds one DAG: a single top-level key `{path.stem}:` with its "
            f"description, params and tasks (found {type(doc).__name__}"
            + (f" with keys {excerpt(', '.join(map(str, doc)), 200)[1:-1]}" if isinstance(doc, dict) else "")
            + ")"
        )
    dag_id = next(iter(doc))
    errors = sorted(
        jsonschema.Draft202012Validator(PIPELINE_SCHEMA).iter_errors(doc),
        key=lambda e: (len(e.absolute_path), [str(p) for p in e.absolute_path]),
    )
    if errors:
        raise _schema_error(path, dag_id, errors[0])
    if dag_id != path.stem:
        raise YamlPipelineError(
            f"{_shown(path.name)}: key {dag_id!r}: the DAG id (top-level key) must be the file name {path.stem!r}"
        )
    return dag_id, doc[dag_id]


def _check_image(path: Path, task: str, image: str) -> None:
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        raise YamlPipelineError(
            f"{_where(path, task, 'image')}: {excerpt(image)} has no tag; give <name>:<tag> (pinned, not latest)"
        )
    if not IMAGE_NAME.ok(name):
        raise YamlPipelineError(
            f"{_where(path, task, 'image')}: {excerpt(image)} is not a name inside the platform registry "
            f"(no registry host; lowercase path: {IMAGE_NAME.describe()})"
        )
    if not IMAGE_TAG.ok(tag):
        raise YamlPipelineError(
            f"{_where(path, task, 'image')}: tag {excerpt(tag)} is not allowed (pin a version; `latest` is "
            f"refused; {IMAGE_TAG.describe()})"
        )


def _check_env(path: Path, task: str, spec: Mapping[str, Any]) -> None:
    for key in ("env", "secret_env"):
        for name in spec.get(key, {}):
            try:
                check_env_name(name, "name")
            except ValueError as exc:
                raise YamlPipelineError(f"{_where(path, task, f'{key}.{name}')}: variable {exc}") from None
    both = sorted(set(spec.get("env", {})) & set(spec.get("secret_env", {})))
    if both:
        raise YamlPipelineError(
            f"{_where(path, task, f'secret_env.{both[0]}')}: {both[0]} is also set under env; a variable "
            "comes from one of env or secret_env"
        )


def _check_templates(path: Path, task: str, spec: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    """Every string a task renders (command items, env and secret_env values) against the YAML
    allow-list of template expressions (mlops_platform.templates, Jinja's parser)."""
    fields = [(f"command[{i}]", v) for i, v in enumerate(spec["command"])]
    fields += [(f"env.{k}", v) for k, v in (spec.get("env") or {}).items()]
    fields += [(f"secret_env.{k}", v) for k, v in (spec.get("secret_env") or {}).items()]
    for key, value in fields:
        try:
            check_yaml_template(value, list(params))
        except TemplateNotAllowed as exc:
            reason = str(exc).split("; allowed: ", 1)[0]
            raise YamlPipelineError(
                f"{_where(path, task, key)}: {excerpt(value)}: {reason}; allowed: {yaml_allowed_text(list(params))}"
            ) from None


def _check_dependencies(path: Path, tasks: Mapping[str, Any]) -> None:
    for task_id, spec in tasks.items():
        for dep in spec.get("dependencies", []):
            if dep not in tasks:
                raise YamlPipelineError(
                    f"{_where(path, task_id, 'dependencies')}: {dep!r} is not a task of this file "
                    f"({', '.join(tasks)})"
                )
    # Depth-first search for a cycle; the message lists it in order.
    state: dict[str, int] = {}

    def visit(task_id: str, stack: list[str]) -> None:
        state[task_id] = 1
        for dep in tasks[task_id].get("dependencies", []):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep] if dep in stack else [task_id, dep]
                raise YamlPipelineError(
                    f"{_where(path, task_id, 'dependencies')}: dependency cycle {' -> '.join(cycle)} (each depends on the next; a pipeline is acyclic)"
                )
            if dep not in state:
                visit(dep, [*stack, dep])
        state[task_id] = 2

    for task_id in tasks:
        if task_id not in state:
            visit(task_id, [task_id])


def _param(path: Path, name: str, spec: Mapping[str, Any]) -> Any:
    """A Param from the platform's helpers (params.py), its default checked against its schema."""
    from airflow.sdk import Param

    from . import params as p

    kind, default, descr = spec["kind"], spec["default"], spec.get("description", "")
    key = f"params.{name}"
    extra = sorted(set(spec) - {"kind", "default", "description"})
    allowed_extra = {"string": {"enum", "pattern"}, "integer": {"minimum", "maximum"}}.get(kind, set())
    if set(extra) - allowed_extra:
        raise YamlPipelineError(
            f"{_where(path, None, key)}: kind {kind!r} takes no {', '.join(sorted(set(extra) - allowed_extra))}"
        )
    try:
        if kind == "dataset":
            param = p.dataset_param(default)
        elif kind == "model_type":
            param = p.model_type_param(default)
        elif kind == "model_name":
            param = p.model_name_param(default)
        elif kind == "relative_path":
            param = p.relative_path_param(default, descr or "Path relative to a mount point (no '..')")
        elif kind == "string":
            if "enum" in spec:
                param = Param(default, type="string", enum=list(spec["enum"]), description=descr)
                if "pattern" in spec:
                    raise YamlPipelineError(f"{_where(path, None, key)}: give one of `enum` or `pattern`")
            elif "pattern" in spec:
                _check_pattern(path, key, spec["pattern"])
                param = p.string_param(
                    default, spec["pattern"], descr, max_length=STRING_PARAM_MAX, safe_text=True
                )
            else:
                raise YamlPipelineError(
                    f"{_where(path, None, key)}: a string param needs `enum` or `pattern` (no free text "
                    "reaches a command)"
                )
        else:
            if "minimum" not in spec or "maximum" not in spec:
                raise YamlPipelineError(f"{_where(path, None, key)}: an integer param needs minimum and maximum")
            param = p.int_param(default, spec["minimum"], spec["maximum"], descr)
        if descr and not param.description:
            param.description = descr
        param.resolve(default)
    except YamlPipelineError:
        raise
    except Exception as exc:  # ParamValidationError, ValueError: the default does not fit
        raise YamlPipelineError(f"{_where(path, None, key)}: default {excerpt(default)}: {str(exc)[:300]}") from None
    return param


def _check_pattern(path: Path, key: str, pattern: str) -> None:
    """A string param's pattern, limited to a subset the backtracking `re` engine (Airflow checks
    Params with jsonschema, i.e. Python `re`) runs in bounded time on a value of at most
    STRING_PARAM_MAX characters: a quantifier (`*`, `+`, `?`, `{m,n}`) applies to one character
    or class only, never to a group; at most MAX_PATTERN_REPEATS quantifiers; no back-references,
    lookarounds or conditionals. `^(a+)+$` and `(x|xx)*` are refused."""
    import re._parser as sre  # the parser of the engine that will run the pattern
    from re._constants import (  # type: ignore[attr-defined]
        ANY,
        AT,
        BRANCH,
        IN,
        LITERAL,
        MAX_REPEAT,
        MIN_REPEAT,
        NOT_LITERAL,
        SUBPATTERN,
    )

    single = (LITERAL, NOT_LITERAL, ANY, IN)
    where = _where(path, None, f"{key}.pattern")
    try:
        parsed = sre.parse(pattern)
    except re.error as exc:
        raise YamlPipelineError(f"{where}: not a regular expression ({exc})") from None
    repeats = 0

    def walk(items: Any) -> None:
        nonlocal repeats
        for op, av in items:
            if op in single or op is AT:
                continue
            if op in (MAX_REPEAT, MIN_REPEAT):
                repeats += 1
                body = list(av[2])
                if len(body) != 1 or body[0][0] not in single:
                    raise YamlPipelineError(
                        f"{where}: a quantifier may only follow one character or class, not a group "
                        "(nested or grouped repetition can backtrack for hours)"
                    )
            elif op is SUBPATTERN:
                walk(av[-1])
            elif op is BRANCH:
                for branch in av[1]:
                    walk(branch)
            else:
                raise YamlPipelineError(
                    f"{where}: {str(op).lower()} is not allowed (only characters, classes, anchors, groups, "
                    "alternatives and quantifiers on one character or class)"
                )

    walk(parsed)
    if repeats > MAX_PATTERN_REPEATS:
        raise YamlPipelineError(f"{where}: more than {MAX_PATTERN_REPEATS} quantifiers")


def _task_kwargs(path: Path, cfg: PlatformConfig, task_id: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The checked task as `pod_task_kwargs()` (the keyword arguments of a Python pod_task)."""
    from .pods import pod_task_kwargs

    if spec["profile"] not in cfg.profiles:
        raise YamlPipelineError(
            f"{_where(path, task_id, 'profile')}: unknown profile {spec['profile']!r}; this environment "
            f"defines: {', '.join(cfg.profile_names)}"
        )
    image = None
    if "image" in spec:
        _check_image(path, task_id, spec["image"])
        name, _, tag = spec["image"].rpartition(":")
        image = cfg.image(name, tag)
    _check_env(path, task_id, spec)
    for name, ref in spec.get("secret_env", {}).items():
        if ref not in cfg.secret_refs:
            raise YamlPipelineError(
                f"{_where(path, task_id, f'secret_env.{name}')}: {ref!r} is not in the chart's "
                f"pipelines.secrets allow-list ({', '.join(cfg.secret_refs) or 'empty in this environment'})"
            )
    for key in ("cpu", "memory"):
        if key in spec:
            from .pods import resources_for

            try:
                resources_for(cfg.profile(spec["profile"]), **{key: spec[key]})
            except ValueError as exc:
                raise YamlPipelineError(f"{_where(path, task_id, key)}: {str(exc)[:500]}") from None
    extra: dict[str, Any] = {}
    if "timeout_seconds" in spec:
        extra["timeout_seconds"] = spec["timeout_seconds"]
        extra["execution_timeout"] = timedelta(seconds=spec["timeout_seconds"]) + EXECUTION_MARGIN
    if spec.get("secret_env"):
        extra["secret_env"] = dict(spec["secret_env"])
    if "retries" in spec:
        extra["retries"] = spec["retries"]
    if spec.get("cleanup"):
        extra["trigger_rule"] = "all_done"
    try:
        kwargs = pod_task_kwargs(
            task_id,
            list(spec["command"]),
            profile=spec["profile"],
            cfg=cfg,
            image=image,
            env=spec.get("env") or None,
            cpu=spec.get("cpu"),
            memory=spec.get("memory"),
            **extra,
        )
    except ValueError as exc:  # the helpers' own checks (same messages as for Python DAGs)
        raise YamlPipelineError(f"{_shown(path.name)}: task {task_id!r}: {str(exc)[:500]}") from None
    kwargs.pop("task_id")
    return kwargs


def factory_config(path: Path, dag_id: str, section: Mapping[str, Any], cfg: PlatformConfig) -> dict[str, Any]:
    """The dag-factory configuration of one checked file: DAG arguments of `cfg.dag_defaults()`, the
    schedule of this environment (chart value pipelines.schedules), tasks as MlopsPodOperators."""
    tasks = section["tasks"]
    _check_dependencies(path, tasks)
    if (path.parent.parent / f"{dag_id}.py").exists():
        raise YamlPipelineError(f"{_where(path, None, dag_id)}: the DAG id is already used by {dag_id}.py")
    params = {name: _param(path, name, spec) for name, spec in (section.get("params") or {}).items()}
    for task_id, spec in tasks.items():
        _check_templates(path, task_id, spec, params)
    defaults = cfg.dag_defaults()
    task_configs = {}
    for task_id, spec in tasks.items():
        task_configs[task_id] = {
            "operator": OPERATOR,
            **_task_kwargs(path, cfg, task_id, spec),
            "dependencies": list(spec.get("dependencies", [])),
        }
    doc = section.get("doc_md") or section.get("description") or ""
    return {
        "description": section.get("description"),
        "doc_md": f"{doc}\n\nYAML pipeline `{PIPELINES_DIR}/{path.name}`.".strip(),
        "tags": [*section.get("tags", []), "yaml"],
        "schedule": cfg.schedule(dag_id),
        "start_date": start_date(),
        "catchup": defaults["catchup"],
        "max_active_runs": defaults["max_active_runs"],
        "default_args": defaults["default_args"],
        "params": params,
        # Templates reach the platform's paths as {{ platform.workspace }} / {{ platform.datasets }}.
        "user_defined_macros": {"platform": _platform_macro(cfg)},
        "tasks": task_configs,
    }


@dataclass(frozen=True)
class PlatformPaths:
    """`{{ platform.* }}` in a YAML pipeline's templates (an object, not a dict: dag-factory
    imports the string values of a dict of macros)."""

    workspace: str
    datasets: str
    registry: str


def _platform_macro(cfg: PlatformConfig) -> PlatformPaths:
    return PlatformPaths(cfg.workspace_mount_path, cfg.datasets_mount_path, cfg.image_prefix)


def _dag_builder() -> Any:
    import warnings

    with warnings.catch_warnings():
        # dag-factory 1.1.0 also imports the Airflow 2 paths of PythonOperator & co. (deprecated
        # aliases on Airflow 3) to recognise either; those operators are not used here.
        warnings.filterwarnings("ignore", message=r"The `airflow\.(operators|sensors)\.")
        from dagfactory.dagbuilder import DagBuilder
    return DagBuilder


def build_pipeline(path: Path, cfg: PlatformConfig | None = None) -> Any:
    """The DAG of one YAML pipeline file (raises YamlPipelineError)."""
    cfg = cfg or load_platform()
    try:
        text = _read_text(path)
    except _Refused as exc:
        raise YamlPipelineError(f"{_shown(path.name)}: refused: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlPipelineError(f"{_shown(path.name)}: not readable ({str(exc)[:300]})") from None
    dag_id, section = read_pipeline(path, text)
    config = factory_config(path, dag_id, section, cfg)
    cleanup = [t for t, spec in section["tasks"].items() if spec.get("cleanup")]
    builder = _dag_builder()(dag_name=dag_id, dag_config=config, default_config={}, yml_dag=text)
    try:
        dag = builder.build()["dag"]
    except Exception as exc:  # dag-factory / operator errors not caught above
        raise YamlPipelineError(f"{_shown(path.name)}: dag-factory: {type(exc).__name__}: {str(exc)[:500]}") from None
    _finish(dag, cleanup, cfg)
    return dag


def _finish(dag: Any, cleanup: list[str], cfg: PlatformConfig) -> None:
    """What DAG(...) takes from cfg.dag_defaults() but dag-factory does not pass on, and the tags."""
    from .common import as_cleanup

    defaults = cfg.dag_defaults()
    dag.user_defined_filters = defaults["user_defined_filters"]
    if defaults.get("on_failure_callback"):
        dag.on_failure_callback = defaults["on_failure_callback"]
    # Without the `dagfactory` tag dag-factory's listener sends no telemetry for these DAGs.
    dag.tags = {t for t in dag.tags if t != "dagfactory"}
    for task_id in cleanup:
        as_cleanup(dag.get_task(task_id))


def load_pipelines(namespace: dict[str, Any], dags_dir: str | Path) -> dict[str, Any]:
    """Build every YAML pipeline of `<dags_dir>/pipelines/` into `namespace` (a DAG file's
    globals). Bad files are reported by one stand-in DAG that fails Airflow's validation with
    every error, so the DagBag records an import error and keeps the other DAGs."""
    cfg = load_platform()
    built: dict[str, Any] = {}
    files, errors = _entries(dags_dir)
    if files:  # imports first, so a file's time bound measures the file, not the imports
        import jsonschema  # noqa: F401

        from . import params, pods  # noqa: F401

        _dag_builder()
    errors = [f"{PIPELINES_DIR}/{e}" for e in errors]
    for path in files:
        started = time.monotonic()
        try:
            dag = build_pipeline(path, cfg)
        except YamlPipelineError as exc:
            errors.append(f"{PIPELINES_DIR}/{_bounded_error(str(exc))}")
            continue
        except Exception as exc:  # anything else stays this file's error too
            errors.append(f"{PIPELINES_DIR}/{_shown(path.name)}: {type(exc).__name__}: {_bounded_error(str(exc))}")
            continue
        elapsed = time.monotonic() - started
        if elapsed > MAX_SECONDS:
            errors.append(
                f"{PIPELINES_DIR}/{_shown(path.name)}: refused: reading and checking it took {elapsed:.1f} s "
                f"(at most {MAX_SECONDS:g} s per file)"
            )
            continue
        built[dag.dag_id] = dag
    namespace.update(built)
    if errors:
        namespace["yaml_pipeline_errors"] = _error_dag(errors)
    return built


def _bounded_error(message: str) -> str:
    return message if len(message) <= MAX_ERROR_CHARS else message[:MAX_ERROR_CHARS] + "... (cut)"


def _error_dag(errors: list[str]) -> Any:
    from airflow.sdk import DAG

    class YamlPipelineErrors(DAG):  # type: ignore[misc]
        """Never bagged: validate() raises with the YAML errors (DagBag: import error)."""

        def validate(self) -> None:
            raise YamlPipelineError("; ".join(errors))

    return YamlPipelineErrors(dag_id="yaml_pipeline_errors", schedule=None)
