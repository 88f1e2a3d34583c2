"""Param helpers: every `dag_run.conf` key is a declared Param with a strict JSON schema.

Airflow validates params when the run's template context is built (before any pod exists) and
raises `airflow.exceptions.ParamValidationError` naming the param. The schemas here never let a
value reach a shell: commands are lists of strings, names have patterns, numbers have bounds.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from .config import PlatformConfig

# Docker image name path without a registry host: lowercase components separated by '/';
# no '.' or ':' anywhere, so no component can ever be read as another registry host.
IMAGE_NAME_PATTERN = r"^[a-z0-9]+(?:[_-][a-z0-9]+)*(?:/[a-z0-9]+(?:[_-][a-z0-9]+)*){0,2}$"
# Docker tag grammar, `latest` refused (runs must be reproducible).
IMAGE_TAG_PATTERN = r"^(?!latest$)[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
# Environment variable names (POSIX portable, upper case).
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]{0,63}$"
# Names the platform sets itself: a job must not override them.
RESERVED_ENV_NAMES = (
    "HOME",
    "PATH",
    "MLFLOW_TRACKING_URI",
    "MLOPS_PROFILE",
    "MLOPS_GPUS",
    "MLOPS_WORKSPACE_SUBPATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
)
# Shell interpreters (a command starting with one of them plus -c is refused).
SHELL_PATTERN = r"^(?:/usr)?(?:/local)?(?:/bin/)?(?:ba|da|z|k|c|tc|fi|a)?sh$"
# Model names in MLflow's registry / Kubernetes object names derived from them.
MODEL_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"
# A relative path below a mount point: no '..' component, no absolute path, no odd characters.
RELATIVE_PATH_PATTERN = r"^(?!.*(?:^|/)\.\.?(?:/|$))[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}$"


def profile_param(cfg: PlatformConfig, default: str | None = None, gpu_only: bool = False) -> Param:
    """A profile name from platform.json (enum)."""
    names = cfg.gpu_profile_names if gpu_only else cfg.profile_names
    if not names:
        raise ValueError(f"{cfg.path}: no {'GPU ' if gpu_only else ''}profiles defined")
    chosen = default if default is not None else (names[0] if gpu_only else cfg.default_profile)
    descr = "; ".join(f"{p}: {cfg.profiles[p].gpus} GPU(s)" for p in names)
    return Param(chosen, type="string", enum=names, title="Profile", description=f"Compute profile ({descr})")


def profiles_param(cfg: PlatformConfig, default: list[str], gpu_only: bool = True) -> Param:
    """A non-empty list of distinct profile names."""
    names = cfg.gpu_profile_names if gpu_only else cfg.profile_names
    return Param(
        list(default),
        type="array",
        items={"type": "string", "enum": names},
        minItems=1,
        maxItems=len(names),
        uniqueItems=True,
        title="Profiles",
        description=f"Profiles to run, any of: {', '.join(names)}",
    )


def int_param(default: int, minimum: int, maximum: int, description: str, title: str | None = None) -> Param:
    """A bounded integer (booleans are not integers here)."""
    if not minimum <= default <= maximum:
        raise ValueError(f"default {default} outside {minimum}..{maximum}")
    extra = {"title": title} if title else {}
    return Param(default, type="integer", minimum=minimum, maximum=maximum, description=description, **extra)


def string_param(default: str, pattern: str, description: str, max_length: int = 255, **kw: Any) -> Param:
    return Param(default, type="string", pattern=pattern, maxLength=max_length, description=description, **kw)


def image_name_param(default: str) -> Param:
    return string_param(
        default,
        IMAGE_NAME_PATTERN,
        "Image name inside the platform registry (the registry host is fixed by the platform)",
        max_length=128,
        title="Image name",
    )


def image_tag_param(default: str) -> Param:
    return string_param(default, IMAGE_TAG_PATTERN, "Image tag (not `latest`)", max_length=128, title="Tag")


def env_param(default: dict[str, str] | None = None, max_vars: int = 32, max_value: int = 4096) -> Param:
    """Environment variables for the job: validated names, string values, bounded sizes."""
    return Param(
        dict(default or {}),
        type="object",
        propertyNames={"pattern": ENV_NAME_PATTERN, "not": {"enum": list(RESERVED_ENV_NAMES)}},
        additionalProperties={"type": "string", "maxLength": max_value},
        maxProperties=max_vars,
        title="Environment",
        description=f"Variables NAME -> value; names match {ENV_NAME_PATTERN}, reserved: "
        + ", ".join(RESERVED_ENV_NAMES),
    )


def command_param(default: list[str], max_items: int = 64, max_item_length: int = 1024) -> Param:
    """The container command as an argument list (never a shell string)."""
    return Param(
        list(default),
        type="array",
        items={"type": "string", "minLength": 1, "maxLength": max_item_length, "pattern": r"^[^\x00]*$"},
        minItems=1,
        maxItems=max_items,
        # Defence in depth: a shell interpreter with -c would turn conf into shell code.
        **{"not": {"minItems": 2, "prefixItems": [{"pattern": SHELL_PATTERN}, {"pattern": r"^-[A-Za-z]*c"}]}},
        title="Command",
        description="Command and arguments as a list of strings (executed without a shell)",
    )


# The trainer's choices (images/trainer mlops_trainer.models); tests/dags/test_trainer_cli.py
# checks that every DAG offers a subset of them.
DATASETS = ("iris", "wine", "breast_cancer")
MODEL_TYPES = ("logistic_regression", "random_forest", "gradient_boosting", "knn")


def dataset_param(default: str = "iris") -> Param:
    return Param(default, type="string", enum=list(DATASETS), description="scikit-learn data set")


def model_type_param(default: str) -> Param:
    return Param(default, type="string", enum=list(MODEL_TYPES))


def model_name_param(default: str) -> Param:
    return string_param(default, MODEL_NAME_PATTERN, "Registered model name", max_length=40, title="Model")


def relative_path_param(default: str, description: str) -> Param:
    return string_param(default, RELATIVE_PATH_PATTERN, description, max_length=255)


def secret_env_param(cfg: Any) -> Param:
    """Environment from Kubernetes Secrets: ENV_NAME -> `<secret>/<key>`, only references of the
    chart's allow-list (pipelines.secrets); the conf holds names, never values."""
    refs = cfg.secret_refs
    value_schema: dict[str, Any] = {"type": "string", "enum": refs} if refs else {"type": "string"}
    return Param(
        {},
        type="object",
        propertyNames={"pattern": ENV_NAME_PATTERN, "not": {"enum": list(RESERVED_ENV_NAMES)}},
        additionalProperties=value_schema,
        maxProperties=32 if refs else 0,
        title="Secrets as environment",
        description="Variables NAME -> '<secret>/<key>' (env from secretKeyRef); allowed: "
        + (", ".join(refs) or "none"),
    )
