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

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from .config import PlatformConfig, load_platform
from .params import (
    ENV_NAME_PATTERN,
    IMAGE_NAME_PATTERN,
    IMAGE_TAG_PATTERN,
    RESERVED_ENV_NAMES,
    SHELL_PATTERN,
)

PIPELINES_DIR = "pipelines"
SUFFIXES = (".yaml", ".yml")
OPERATOR = "mlops_platform.pods.MlopsPodOperator"
ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
MIN_TIMEOUT, MAX_TIMEOUT = 60, 7 * 24 * 3600
# Added to a task's time limit for its execution_timeout: the wait for a node and image pull.
EXECUTION_MARGIN = timedelta(hours=1)
START_DATE = (2026, 1, 1)

_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)
_PARAM_REF = re.compile(r"\bparams\.([A-Za-z_][A-Za-z0-9_]*)")
PARAM_KINDS = ("dataset", "model_type", "model_name", "relative_path", "string", "integer")

PIPELINE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "propertyNames": {"pattern": ID_PATTERN},
    "additionalProperties": {
        "type": "object",
        "additionalProperties": False,
        "required": ["tasks"],
        "properties": {
            "description": {"type": "string", "maxLength": 500},
            "doc_md": {"type": "string", "maxLength": 20000},
            "tags": {"type": "array", "items": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_.-]{0,49}$"}},
            "params": {
                "type": "object",
                "propertyNames": {"pattern": r"^[a-z][a-z0-9_]{0,62}$"},
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["kind", "default"],
                    "properties": {
                        "kind": {"enum": list(PARAM_KINDS)},
                        "default": {"type": ["string", "integer"]},
                        "description": {"type": "string", "maxLength": 500},
                        "enum": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                        "pattern": {"type": "string"},
                        "minimum": {"type": "integer"},
                        "maximum": {"type": "integer"},
                    },
                },
            },
            "tasks": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": ID_PATTERN},
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["profile", "command"],
                    "properties": {
                        "profile": {"type": "string"},
                        "image": {"type": "string"},
                        "command": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "minLength": 1},
                        },
                        "env": {"type": "object", "additionalProperties": {"type": "string"}},
                        "secret_env": {"type": "object", "additionalProperties": {"type": "string"}},
                        "timeout_seconds": {"type": "integer", "minimum": MIN_TIMEOUT, "maximum": MAX_TIMEOUT},
                        "dependencies": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
                        "retries": {"type": "integer", "minimum": 1, "maximum": 10},
                        "cleanup": {"type": "boolean"},
                        "cpu": {"type": "string", "pattern": QUANTITY_PATTERN},
                        "memory": {"type": "string", "pattern": QUANTITY_PATTERN},
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


def pipeline_files(dags_dir: str | Path) -> list[Path]:
    """The YAML pipeline files of a DAG folder, sorted."""
    folder = pipelines_dir(dags_dir)
    return sorted(p for p in folder.glob("*") if p.suffix in SUFFIXES and p.is_file())


def _where(path: Path, task: str | None, key: str) -> str:
    return f"{path.name}: " + (f"task {task!r}: " if task else "") + f"key {key!r}"


def _schema_error(path: Path, dag_id: str | None, error: Any) -> YamlPipelineError:
    """A jsonschema error as `file: task 't': key 'k': message`."""
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
    message = error.message
    if parts and parts[-1] == "command" and error.validator == "type":
        message = "the command must be an argument list (YAML list of strings), never a shell string"
    return YamlPipelineError(f"{_where(path, task, key)}: {message}")


def read_pipeline(path: Path) -> tuple[str, dict[str, Any]]:
    """(dag_id, DAG section) of one file, schema-checked; the DAG id must be the file name."""
    import jsonschema

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise YamlPipelineError(f"{path.name}: not readable YAML ({exc})") from None
    if not isinstance(doc, dict) or len(doc) != 1:
        raise YamlPipelineError(
            f"{path.name}: the file holds one DAG: a single top-level key `{path.stem}:` with its "
            f"description, params and tasks (found {type(doc).__name__}"
            + (f" with keys {', '.join(map(str, doc))}" if isinstance(doc, dict) else "")
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
            f"{path.name}: key {dag_id!r}: the DAG id (top-level key) must be the file name {path.stem!r}"
        )
    return dag_id, doc[dag_id]


def _check_image(path: Path, task: str, image: str) -> None:
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        raise YamlPipelineError(
            f"{_where(path, task, 'image')}: {image!r} has no tag; give <name>:<tag> (pinned, not latest)"
        )
    if not re.match(IMAGE_NAME_PATTERN, name):
        raise YamlPipelineError(
            f"{_where(path, task, 'image')}: {image!r} is not a name inside the platform registry "
            f"(no registry host; lowercase path matching {IMAGE_NAME_PATTERN})"
        )
    if not re.match(IMAGE_TAG_PATTERN, tag):
        raise YamlPipelineError(
            f"{_where(path, task, 'image')}: tag {tag!r} is not allowed (pin a version; `latest` is refused)"
        )


def _check_command(path: Path, task: str, command: list[str]) -> None:
    if len(command) >= 2 and re.match(SHELL_PATTERN, command[0]) and re.match(r"^-[A-Za-z]*c", command[1]):
        raise YamlPipelineError(
            f"{_where(path, task, 'command')}: {command[0]} {command[1]} runs a shell string; "
            "give the program and its arguments as a list"
        )


def _check_env(path: Path, task: str, key: str, env: Mapping[str, str]) -> None:
    for name in env:
        if not re.match(ENV_NAME_PATTERN, name) or name in RESERVED_ENV_NAMES:
            raise YamlPipelineError(
                f"{_where(path, task, f'{key}.{name}')}: variable name not allowed (must match "
                f"{ENV_NAME_PATTERN}; reserved: {', '.join(RESERVED_ENV_NAMES)})"
            )


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
            elif "pattern" in spec:
                param = p.string_param(default, spec["pattern"], descr)
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
        raise YamlPipelineError(f"{_where(path, None, key)}: default {default!r}: {exc}") from None
    return param


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
    _check_command(path, task_id, spec["command"])
    _check_env(path, task_id, "env", spec.get("env", {}))
    _check_env(path, task_id, "secret_env", spec.get("secret_env", {}))
    for name, ref in spec.get("secret_env", {}).items():
        if ref not in cfg.secret_refs:
            raise YamlPipelineError(
                f"{_where(path, task_id, f'secret_env.{name}')}: {ref!r} is not in the chart's "
                f"pipelines.secrets allow-list ({', '.join(cfg.secret_refs) or 'empty in this environment'})"
            )
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
        raise YamlPipelineError(f"{path.name}: {exc}") from None
    kwargs.pop("task_id")
    return kwargs


def factory_config(path: Path, dag_id: str, section: Mapping[str, Any], cfg: PlatformConfig) -> dict[str, Any]:
    """The dag-factory configuration of one checked file: DAG arguments of `dag_defaults()`, the
    schedule of this environment (chart value pipelines.schedules), tasks as MlopsPodOperators."""
    import pendulum

    from .common import dag_defaults

    tasks = section["tasks"]
    _check_dependencies(path, tasks)
    if (path.parent.parent / f"{dag_id}.py").exists():
        raise YamlPipelineError(f"{_where(path, None, dag_id)}: the DAG id is already used by {dag_id}.py")
    params = {name: _param(path, name, spec) for name, spec in (section.get("params") or {}).items()}
    for task_id, spec in tasks.items():
        templates = _TEMPLATE.findall("\n".join([*spec["command"], *(spec.get("env") or {}).values()]))
        for used in _PARAM_REF.findall("\n".join(templates)):
            if used not in params:
                raise YamlPipelineError(
                    f"{_where(path, task_id, 'command')}: params.{used} is not declared under params "
                    f"({', '.join(params) or 'none declared'})"
                )
    defaults = dag_defaults()
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
        "start_date": pendulum.datetime(*START_DATE, tz="UTC"),
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
    dag_id, section = read_pipeline(path)
    config = factory_config(path, dag_id, section, cfg)
    cleanup = [t for t, spec in section["tasks"].items() if spec.get("cleanup")]
    builder = _dag_builder()(dag_name=dag_id, dag_config=config, default_config={}, yml_dag=path.read_text())
    try:
        dag = builder.build()["dag"]
    except Exception as exc:  # dag-factory / operator errors not caught above
        raise YamlPipelineError(f"{path.name}: dag-factory: {type(exc).__name__}: {exc}") from None
    _finish(dag, cleanup)
    return dag


def _finish(dag: Any, cleanup: list[str]) -> None:
    """What DAG(...) takes from dag_defaults() but dag-factory does not pass on, and the tags."""
    from .common import as_cleanup, dag_defaults

    defaults = dag_defaults()
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
    built, errors = {}, []
    for path in pipeline_files(dags_dir):
        try:
            dag = build_pipeline(path, cfg)
        except YamlPipelineError as exc:
            errors.append(f"{PIPELINES_DIR}/{exc}")
        except Exception as exc:  # anything else stays this file's error too
            errors.append(f"{PIPELINES_DIR}/{path.name}: {type(exc).__name__}: {exc}")
        else:
            built[dag.dag_id] = dag
    namespace.update(built)
    if errors:
        namespace["yaml_pipeline_errors"] = _error_dag(errors)
    return built


def _error_dag(errors: list[str]) -> Any:
    from airflow.sdk import DAG

    class YamlPipelineErrors(DAG):  # type: ignore[misc]
        """Never bagged: validate() raises with the YAML errors (DagBag: import error)."""

        def validate(self) -> None:
            raise YamlPipelineError("; ".join(errors))

    return YamlPipelineErrors(dag_id="yaml_pipeline_errors", schedule=None)
