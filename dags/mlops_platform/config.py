"""Load the platform configuration (platform.json) rendered by the chart.

The chart renders ConfigMap `<fullname>-platform` (key `platform.json`) and mounts it into every
Airflow component at /opt/airflow/platform/. DAG files read it at parse time: one file read,
no database, no network, no Airflow Variable. `MLOPS_PLATFORM_DIR` overrides the directory
(tests, local development) and `MLOPS_POD_TEMPLATES_DIR` overrides the directory of the pod
template files (the file names of `podTemplateFile` are kept).

Errors are raised as `PlatformConfigError` naming the file, the key and what is allowed, so an
import error in the Airflow UI says exactly what is wrong with the deployment.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PLATFORM_DIR = "/opt/airflow/platform"
PLATFORM_FILE = "platform.json"
PLATFORM_DIR_ENV = "MLOPS_PLATFORM_DIR"
POD_TEMPLATES_DIR_ENV = "MLOPS_POD_TEMPLATES_DIR"
SUPPORTED_SCHEMA_VERSION = 1

# A profile name becomes part of a file name, a label value and a task id.
PROFILE_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
# Registry prefix: host[:port][/path...] or '' (bare image names).
IMAGE_PREFIX_RE = re.compile(
    r"^$|^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
)


class PlatformConfigError(RuntimeError):
    """platform.json is missing or invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Profile:
    """One compute profile: a pod template file and the GPUs it requests."""

    name: str
    gpus: int
    pod_template_file: str
    description: str = ""

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0


@dataclass(frozen=True)
class PlatformConfig:
    """Typed view of platform.json (schemaVersion 1); `raw` keeps the whole document."""

    path: str
    release: str
    namespace: str
    task_namespace: str
    service_account_name: str | None
    registry_enabled: bool
    registry_host: str
    pull_secret: str | None
    image_prefix: str
    trainer_image: str
    mlflow_image: str
    profiles: dict[str, Profile]
    default_profile: str
    gpu_pool: str
    gpu_pool_slots: int
    tracking_uri: str
    workspace_enabled: bool
    workspace_mount_path: str
    workspace_subpath_env: str
    datasets_enabled: bool
    datasets_mount_path: str
    serving: dict[str, Any]
    raw: dict[str, Any]

    @property
    def profile_names(self) -> list[str]:
        return list(self.profiles)

    @property
    def gpu_profile_names(self) -> list[str]:
        return [p.name for p in self.profiles.values() if p.is_gpu]

    @property
    def max_gpus(self) -> int:
        return max((p.gpus for p in self.profiles.values()), default=0)

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise PlatformConfigError(
                f"{self.path}: unknown profile {name!r}; the chart defines: {', '.join(self.profiles)}"
            ) from None

    def image(self, name: str, tag: str) -> str:
        """`<images.prefix>/<name>:<tag>` (bare `<name>:<tag>` when the prefix is '')."""
        return f"{self.image_prefix}/{name}:{tag}" if self.image_prefix else f"{name}:{tag}"

    def image_allowed(self, ref: str) -> bool:
        """True when `ref` comes from the configured registry prefix."""
        if not self.image_prefix:
            first = ref.split("/", 1)[0]
            # A bare reference must not name another registry host.
            return "/" not in ref or not ("." in first or ":" in first or first == "localhost")
        return ref.startswith(self.image_prefix + "/")


def platform_dir() -> Path:
    return Path(os.environ.get(PLATFORM_DIR_ENV) or DEFAULT_PLATFORM_DIR)


def _get(doc: dict[str, Any], path: str, kind: type | tuple[type, ...], where: str) -> Any:
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise PlatformConfigError(f"{where}: missing key {path!r}")
        cur = cur[part]
    # bool is an int subclass: never accept it where a number is expected.
    if (kind is int and isinstance(cur, bool)) or not isinstance(cur, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise PlatformConfigError(f"{where}: key {path!r} must be {names}, got {cur!r}")
    return cur


def parse_platform(doc: Any, where: str = PLATFORM_FILE) -> PlatformConfig:
    """Validate a decoded platform.json document and return its typed view."""
    if not isinstance(doc, dict):
        raise PlatformConfigError(f"{where}: the document must be a JSON object")
    version = _get(doc, "schemaVersion", int, where)
    if version != SUPPORTED_SCHEMA_VERSION:
        raise PlatformConfigError(
            f"{where}: schemaVersion {version} is not supported (this DAG code reads "
            f"{SUPPORTED_SCHEMA_VERSION}); upgrade the chart and the DAGs together"
        )
    templates_dir = os.environ.get(POD_TEMPLATES_DIR_ENV)
    profiles: dict[str, Profile] = {}
    raw_profiles = _get(doc, "profiles", dict, where)
    if not raw_profiles:
        raise PlatformConfigError(f"{where}: key 'profiles' must define at least one profile")
    for name, spec in raw_profiles.items():
        if not PROFILE_NAME_RE.match(name):
            raise PlatformConfigError(f"{where}: profile name {name!r} must match {PROFILE_NAME_RE.pattern}")
        gpus = _get(doc, f"profiles.{name}.gpus", int, where)
        if not 0 <= gpus <= 64:
            raise PlatformConfigError(f"{where}: key 'profiles.{name}.gpus' must be 0..64, got {gpus}")
        template = _get(doc, f"profiles.{name}.podTemplateFile", str, where)
        if not template.startswith("/"):
            raise PlatformConfigError(
                f"{where}: key 'profiles.{name}.podTemplateFile' must be an absolute path, got {template!r}"
            )
        if templates_dir:
            template = str(Path(templates_dir) / Path(template).name)
        description = spec.get("description") or ""
        profiles[name] = Profile(name, gpus, template, str(description))
    default_profile = _get(doc, "defaultProfile", str, where)
    if default_profile not in profiles:
        raise PlatformConfigError(
            f"{where}: key 'defaultProfile' is {default_profile!r}, not one of: {', '.join(profiles)}"
        )
    prefix = _get(doc, "images.prefix", str, where).rstrip("/")
    if not IMAGE_PREFIX_RE.match(prefix):
        raise PlatformConfigError(
            f"{where}: key 'images.prefix' {prefix!r} is not a registry host[/path] (or '')"
        )
    slots = _get(doc, "gpuPool.slots", int, where)
    if slots < 0:
        raise PlatformConfigError(f"{where}: key 'gpuPool.slots' must be >= 0, got {slots}")
    sa = doc.get("tasks", {}).get("serviceAccountName") if isinstance(doc.get("tasks"), dict) else None
    if sa is not None and not isinstance(sa, str):
        raise PlatformConfigError(f"{where}: key 'tasks.serviceAccountName' must be a string or null")
    secret = doc.get("registry", {}).get("pullSecret") if isinstance(doc.get("registry"), dict) else None
    workspace = doc.get("workspace") if isinstance(doc.get("workspace"), dict) else {}
    datasets = doc.get("datasets") if isinstance(doc.get("datasets"), dict) else {}
    serving = doc.get("serving") if isinstance(doc.get("serving"), dict) else {}
    return PlatformConfig(
        path=where,
        release=_get(doc, "release", str, where),
        namespace=_get(doc, "namespace", str, where),
        task_namespace=_get(doc, "tasks.namespace", str, where),
        service_account_name=sa or None,
        registry_enabled=bool(_get(doc, "registry.enabled", bool, where)),
        registry_host=str(doc["registry"].get("host") or ""),
        pull_secret=secret or None,
        image_prefix=prefix,
        trainer_image=_get(doc, "images.trainer", str, where),
        mlflow_image=str(doc["images"].get("mlflow") or ""),
        profiles=profiles,
        default_profile=default_profile,
        gpu_pool=_get(doc, "gpuPool.name", str, where),
        gpu_pool_slots=slots,
        tracking_uri=_get(doc, "mlflow.trackingUri", str, where),
        workspace_enabled=bool(workspace.get("enabled", False)),
        workspace_mount_path=str(workspace.get("mountPath") or "/workspace"),
        workspace_subpath_env=str(workspace.get("subPathEnv") or "MLOPS_WORKSPACE_SUBPATH"),
        datasets_enabled=bool(datasets.get("enabled", False)),
        datasets_mount_path=str(datasets.get("mountPath") or "/data"),
        serving=dict(serving),
        raw=doc,
    )


_CACHE: dict[tuple[str, float], PlatformConfig] = {}


def load_platform(directory: str | os.PathLike[str] | None = None) -> PlatformConfig:
    """Read and validate `<dir>/platform.json` (cached per path and modification time)."""
    path = Path(directory) / PLATFORM_FILE if directory else platform_dir() / PLATFORM_FILE
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise PlatformConfigError(
            f"{path} not found: the chart mounts ConfigMap <release>-airflow-mlops-platform at "
            f"{DEFAULT_PLATFORM_DIR}/ (set {PLATFORM_DIR_ENV} to read it from elsewhere)"
        ) from None
    key = (str(path), stat.st_mtime)
    if key not in _CACHE:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PlatformConfigError(f"{path}: not valid JSON ({exc})") from None
        _CACHE[key] = parse_platform(doc, str(path))
    return _CACHE[key]
