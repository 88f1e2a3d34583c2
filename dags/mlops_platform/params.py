"""Param helpers: every `dag_run.conf` key is a declared Param with a strict JSON schema.

Airflow validates params when the run's template context is built (before any pod exists) and
raises `airflow.exceptions.ParamValidationError` naming the param. The schemas here never let a
value reach a shell: commands are lists of strings, names have patterns, numbers have bounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Param

from .config import PlatformConfig
from .names import (
    ENV_NAME,
    IMAGE_NAME,
    IMAGE_TAG,
    MODEL_NAME,
    MOUNT_PATH,
    NGC_IMAGE,
    RELATIVE_PATH,
    RESERVED_ENV_NAMES,  # noqa: F401  (imported from here by older code)
    NameRule,
    env_names_schema,
    reserved_env_text,
)

if TYPE_CHECKING:
    from .basecommand.settings import BaseCommandSettings

# The names (one validator: mlops_platform.names); the anchored patterns stay importable here.
IMAGE_NAME_PATTERN = IMAGE_NAME.pattern
IMAGE_TAG_PATTERN = IMAGE_TAG.pattern
ENV_NAME_PATTERN = ENV_NAME.pattern
MODEL_NAME_PATTERN = MODEL_NAME.pattern
RELATIVE_PATH_PATTERN = RELATIVE_PATH.pattern
# Characters a free string from a run's conf may hold (string params of YAML pipelines): no
# whitespace, quotes, `$`, backquote, `;|&<>()*?[]{}~#!\\`, no control characters, so a value
# can never be read as shell or Python syntax wherever an author puts it in a command.
SAFE_TEXT_PATTERN = r"^[A-Za-z0-9_.,:=+@/-]*$"


def _bounded(schema: dict[str, Any], max_length: int) -> dict[str, Any]:
    """`schema`'s patterns are only evaluated on a string of at most `max_length` characters.

    jsonschema evaluates every keyword (a `maxLength` error does not stop `pattern`), so a 1 MB
    conf value would reach the regex engine; inside `then`, the pattern runs only when `if`
    (the length) holds."""
    patterned = {k: schema.pop(k) for k in ("pattern", "not", "allOf") if k in schema}
    if not patterned:
        return schema
    return {**schema, "maxLength": max_length, "if": {"maxLength": max_length}, "then": patterned}


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


def string_param(
    default: str, pattern: str, description: str, max_length: int = 255, safe_text: bool = False, **kw: Any
) -> Param:
    """A string matching `pattern` (checked only up to `max_length` characters, no control
    characters); with `safe_text`, also only SAFE_TEXT_PATTERN's characters."""
    schema: dict[str, Any] = {"pattern": pattern, "not": {"type": "string", "pattern": r"[\x00-\x1f\x7f]"}}
    if safe_text:
        schema["allOf"] = [{"pattern": SAFE_TEXT_PATTERN}]
    schema = _bounded(schema, max_length)
    return Param(default, type="string", description=description, **schema, **kw)


def name_param(default: str, rule: NameRule, description: str, **kw: Any) -> Param:
    """A name of `rule` (mlops_platform.names), the same check as the YAML loader and the operators."""
    schema = _bounded(rule.schema(), rule.max_length)
    schema.pop("type")
    return Param(default, type="string", description=description, **schema, **kw)


def image_name_param(default: str) -> Param:
    return name_param(
        default,
        IMAGE_NAME,
        "Image name inside the platform registry (the registry host is fixed by the platform)",
        title="Image name",
    )


def image_tag_param(default: str) -> Param:
    return name_param(default, IMAGE_TAG, "Image tag (not `latest`)", title="Tag")


def env_param(default: dict[str, str] | None = None, max_vars: int = 32, max_value: int = 4096) -> Param:
    """Environment variables for the job: validated names, string values, bounded sizes."""
    return Param(
        dict(default or {}),
        type="object",
        propertyNames=_bounded(env_names_schema(), ENV_NAME.max_length),
        additionalProperties={"type": "string", "maxLength": max_value},
        maxProperties=max_vars,
        title="Environment",
        description=f"Variables NAME -> value; names match {ENV_NAME_PATTERN}, reserved: " + reserved_env_text(),
    )


def command_param(default: list[str], max_items: int = 64, max_item_length: int = 1024) -> Param:
    """The container command as an argument list, executed as given (no shell is added).

    What the list runs is the triggering user's choice (dags/README.md, "What a DAG trigger can
    and cannot do"): the pod's boundaries are what protects the platform, not a look at argv[0]."""
    return Param(
        list(default),
        type="array",
        items=_bounded({"type": "string", "minLength": 1, "not": {"type": "string", "pattern": r"\x00"}}, max_item_length),
        minItems=1,
        maxItems=max_items,
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
    return name_param(default, MODEL_NAME, "Registered model name", title="Model")


def relative_path_param(default: str, description: str) -> Param:
    return name_param(default, RELATIVE_PATH, description)


def secret_env_param(cfg: Any) -> Param:
    """Environment from Kubernetes Secrets: ENV_NAME -> `<secret>/<key>`, only references of the
    chart's allow-list (pipelines.secrets); the conf holds names, never values."""
    refs = cfg.secret_refs
    value_schema: dict[str, Any] = {"type": "string", "enum": refs} if refs else {"type": "string"}
    return Param(
        {},
        type="object",
        propertyNames=_bounded(env_names_schema(), ENV_NAME.max_length),
        additionalProperties=value_schema,
        maxProperties=32 if refs else 0,
        title="Secrets as environment",
        description="Variables NAME -> '<secret>/<key>' (env from secretKeyRef); allowed: "
        + (", ".join(refs) or "none"),
    )


# --- the NVIDIA Base Command backend (mlops_platform.basecommand) ------------------------------------

# The default of `ngc_image` where the chart sets no basecommand.image.
FALLBACK_NGC_IMAGE = "nvidia/pytorch:25.01-py3"


def backend_param(settings: BaseCommandSettings) -> Param:
    """The validated `backend` Param: kubernetes, or basecommand when the chart enables it."""
    return Param(
        settings.default_backend,
        type="string",
        enum=settings.backends,
        title="Backend",
        description="Where the GPU work runs: kubernetes (task pods) or basecommand (NVIDIA Base Command)",
    )


def ngc_image_param(settings: BaseCommandSettings) -> Param:
    """The validated `ngc_image` Param: an NGC image org[/team]/repo:tag (default: the chart's basecommand.image)."""
    schema = NGC_IMAGE.schema()
    schema.pop("type")
    return Param(
        settings.image or FALLBACK_NGC_IMAGE,
        type="string",
        **schema,
        title="NGC image",
        description="Image of a Base Command job: org[/team]/repo:tag in NVIDIA's registry (not `latest`); "
        "the platform registry is not reachable from NGC",
    )


def datasets_param(max_items: int = 16) -> Param:
    """The validated `datasets` Param: NGC datasets to mount, each by name (looked up) or by id."""
    from .basecommand.spec import DATASET_NAME_PATTERN

    item = {
        "type": "object",
        "additionalProperties": False,
        "required": ["mount"],
        "oneOf": [{"required": ["name"]}, {"required": ["id"]}],
        "properties": {
            "name": DATASET_NAME_PATTERN.schema(),
            "id": {"type": "integer", "minimum": 1},
            "mount": MOUNT_PATH.schema(),
        },
    }
    return Param(
        [],
        type="array",
        items=item,
        maxItems=max_items,
        title="NGC datasets",
        description='Datasets to mount, e.g. [{"name": "iris-train", "mount": "/data"}] (a name is looked up in the '
        "org/team's datasets of the ACE before the job is created; or give its numeric id)",
    )
