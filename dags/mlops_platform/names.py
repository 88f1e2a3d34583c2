"""The one validator of every name that reaches Kubernetes or NGC, and the reserved environment.

A `NameRule` is a regular expression over the WHOLE string (`fullmatch`) plus "no control
character" (a trailing newline passes a `$`-anchored Python regex: `re.search("^A$", "A\\n")`
matches). The same rule is offered as:

- `rule.ok(value)` / `rule.check(value, where)` (Python: YAML loader, operators, job specs);
- `rule.schema()`: a JSON-schema fragment for Params (Airflow validates them with `jsonschema`,
  i.e. Python `re.search`) and for the chart's platform.schema.json: `^(?:...)$` plus
  `not: {pattern: CONTROL_CHARACTERS}`, which holds in Python, ECMA and RE2 regex engines alike
  (each of them reads `[\\x00-\\x1f\\x7f]` the same way);
- `rule.match(value)` / `rule.pattern`, so a rule can stand where a compiled `re.Pattern` stood.

Reserved environment (`reserved_env`): the variables the platform sets in a task pod (workspace
sub-path, MLflow endpoint and credentials, profile, HOME/PATH), the GPU-visibility variables the
NVIDIA container toolkit and the CUDA/ROCm runtimes read (a CPU pod given
`NVIDIA_VISIBLE_DEVICES=all` would see every GPU of its node, uncounted by the pool), and the
dynamic loader's and the Python interpreter's injection variables. Names are case-sensitive
(Linux environments are); lower-case names never pass `ENV_NAME` in the first place.

Nothing here imports Airflow: Base Command, the YAML loader and the chart tests use it directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Control characters (C0 and DEL): refused in every name, on top of each rule's own pattern.
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"
_CONTROL = re.compile(CONTROL_CHARACTERS)
# How much of a bad value an error message shows.
EXCERPT = 80


def excerpt(value: Any, limit: int = EXCERPT) -> str:
    """`repr(value)` cut to `limit` characters (error messages never echo a huge value)."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} characters)"
    text = repr(value) if isinstance(value, str) else _short_repr(value, limit)
    return text if len(text) <= limit else text[:limit] + "..."


def _short_repr(value: Any, limit: int) -> str:
    # Never repr a whole container (a YAML alias bomb expands to gigabytes): its type and size.
    if isinstance(value, (dict, list, tuple, set)):
        return f"<{type(value).__name__} of {len(value)}>"
    return repr(value)[: limit + 1]


@dataclass(frozen=True)
class NameRule:
    """A kind of name: `body` must match the whole value; at most `max_length` characters."""

    what: str
    body: str
    max_length: int
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.body))

    @property
    def pattern(self) -> str:
        """The anchored pattern (JSON schema, messages); use with `schema()` / `ok()`, never alone."""
        return f"^(?:{self.body})$"

    def ok(self, value: Any) -> bool:
        return (
            isinstance(value, str)
            and len(value) <= self.max_length
            and _CONTROL.search(value) is None
            and self._compiled.fullmatch(value) is not None
        )

    def match(self, value: Any) -> bool:
        """Drop-in for `re.Pattern.match` at the former call sites (whole string, no control chars)."""
        return self.ok(value)

    def check(self, value: Any, where: str) -> str:
        if not self.ok(value):
            raise ValueError(f"{where}: {excerpt(value)} is not a valid {self.what} ({self.describe()})")
        return value

    def describe(self) -> str:
        return f"must match {self.pattern}, at most {self.max_length} characters, no control characters"

    def schema(self, **extra: Any) -> dict[str, Any]:
        """JSON schema of the rule (add `extra` keywords, e.g. a description)."""
        return {
            "type": "string",
            "maxLength": self.max_length,
            "pattern": self.pattern,
            "not": {"type": "string", "pattern": CONTROL_CHARACTERS},
            **extra,
        }


# --- the names -------------------------------------------------------------------------------------

# Environment variable names (POSIX portable, upper case).
ENV_NAME = NameRule("environment variable name", r"[A-Z_][A-Z0-9_]*", 64)
# DAG ids, task ids and param names of YAML pipelines (also Python identifiers: `params.<name>`).
IDENTIFIER = NameRule("identifier", r"[a-z][a-z0-9_]*", 63)
# Docker image name path without a registry host: lowercase components separated by '/'; no '.'
# or ':' anywhere, so no component can ever be read as another registry host.
IMAGE_NAME = NameRule("image name", r"[a-z0-9]+(?:[_-][a-z0-9]+)*(?:/[a-z0-9]+(?:[_-][a-z0-9]+)*){0,2}", 128)
# Docker tag grammar, `latest` refused (runs must be reproducible).
IMAGE_TAG = NameRule("image tag", r"(?!latest$)[A-Za-z0-9_][A-Za-z0-9_.-]*", 128)
# Model names in MLflow's registry / Kubernetes object names derived from them (DNS label).
MODEL_NAME = NameRule("model name", r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?", 40)
# A relative path below a mount point: no '..' or '.' component, not absolute, plain characters.
RELATIVE_PATH = NameRule("relative path", r"(?!.*(?:^|/)\.\.?(?:/|$))[A-Za-z0-9_][A-Za-z0-9_./-]*", 255)
# A mount point (Base Command datasets, workspaces, results): absolute, no '.'/'..' component,
# never the root nor a system directory of the image.
MOUNT_PATH = NameRule(
    "mount point",
    r"/(?!(?:bin|boot|dev|etc|lib|lib32|lib64|libx32|proc|root|run|sbin|sys|usr|var)(?:/|$))"
    r"(?!.*(?:^|/)\.\.?(?:/|$))[A-Za-z0-9_][A-Za-z0-9_./-]*",
    255,
)
# Base Command image: NVIDIA's registry only. `org[/team]/repo:tag`, optionally prefixed by the
# exact host `nvcr.io/`; the org has no '.' or ':' so it can never be read as another host
# (docker.io/..., ghcr.io/..., nvcr.io.evil.com/... are refused). No `latest`.
NGC_IMAGE = NameRule(
    "NGC image (nvcr.io only)",
    r"(?:nvcr\.io/)?[a-z0-9][a-z0-9_-]*(?:/[a-z0-9][a-z0-9._-]*){1,2}:(?!latest$)[A-Za-z0-9_][A-Za-z0-9_.-]*",
    255,
)
# Kubernetes object name part (DNS label).
DNS_LABEL = NameRule("DNS label", r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?", 63)

# --- reserved environment --------------------------------------------------------------------------

RESERVED_ENV_NAMES = (
    # set by the platform (pod templates, pods.py)
    "HOME",
    "PATH",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLOPS_PROFILE",
    "MLOPS_GPUS",
    "MLOPS_WORKSPACE_SUBPATH",
    # GPU visibility outside the NVIDIA_ prefix (CUDA, ROCm/HIP runtimes)
    "CUDA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "GPU_DEVICE_ORDINAL",
    # code injection into every process of the container
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "PYTHONINSPECT",
    "PERL5OPT",
    "NODE_OPTIONS",
    "BASH_ENV",
    "ENV",
)
RESERVED_ENV_PREFIXES = (
    "MLOPS_",  # the platform's own variables, present and future
    "MLFLOW_TRACKING_",  # MLflow endpoint, credentials, TLS settings
    "NVIDIA_",  # NVIDIA container toolkit: NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES, ...
    "LD_",  # dynamic loader: LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH, ...
    "KUBERNETES_",  # service discovery variables Kubernetes sets
)


def reserved_env(name: str) -> bool:
    """True for a name the platform sets or that changes GPU visibility or the loader."""
    return name in RESERVED_ENV_NAMES or name.startswith(RESERVED_ENV_PREFIXES)


def reserved_env_text() -> str:
    return ", ".join(RESERVED_ENV_NAMES) + ", and every name starting with " + ", ".join(RESERVED_ENV_PREFIXES)


def check_env_name(name: Any, where: str) -> str:
    """A variable name a task, a YAML file or a run's conf may set."""
    ENV_NAME.check(name, where)
    if reserved_env(name):
        raise ValueError(f"{where}: {name!r} is reserved by the platform ({reserved_env_text()})")
    return name


def env_names_schema() -> dict[str, Any]:
    """JSON schema of a user-set variable name (Params' `propertyNames`)."""
    prefixes = "|".join(re.escape(p) for p in RESERVED_ENV_PREFIXES)
    return {
        **ENV_NAME.schema(),
        "not": {
            "anyOf": [
                {"type": "string", "pattern": CONTROL_CHARACTERS},
                {"enum": list(RESERVED_ENV_NAMES)},
                {"pattern": f"^(?:{prefixes})"},
            ]
        },
    }
