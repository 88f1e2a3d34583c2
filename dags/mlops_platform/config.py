"""Load the platform configuration (platform.json) rendered by the chart.

The chart renders ConfigMap `<mounts.configMapPrefix>-platform` (default `airflow-mlops-platform`;
key `platform.json`) and mounts it into every
Airflow component at /opt/airflow/platform/. DAG files read it at parse time: one file read,
no database, no network, no Airflow Variable. `MLOPS_PLATFORM_DIR` overrides the directory
(tests, local development) and `MLOPS_POD_TEMPLATES_DIR` overrides the directory of the pod
template files (the file names of `podTemplateFile` are kept).

The document is validated against `platform.schema.json`, which the chart ships beside it in
the same ConfigMap (the one definition of the format). Errors are raised as
`PlatformConfigError` naming the file, the key and what is allowed, so an import error in the
Airflow UI says exactly what is wrong with the deployment.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from .common import DEFAULT_OWNER, PATH_FILTER, path_segment, schema_problems, schema_validator

DEFAULT_PLATFORM_DIR = "/opt/airflow/platform"
PLATFORM_FILE = "platform.json"
# The JSON schema of platform.json, shipped by the chart in the same ConfigMap.
SCHEMA_FILE = "platform.schema.json"
PLATFORM_DIR_ENV = "MLOPS_PLATFORM_DIR"
POD_TEMPLATES_DIR_ENV = "MLOPS_POD_TEMPLATES_DIR"
SUPPORTED_SCHEMA_VERSION = 1
# The start date of every platform DAG (Python and YAML pipelines alike; no catch-up).
START_DATE = (2026, 1, 1)


def start_date() -> Any:
    """The platform DAGs' start date (`START_DATE`, UTC) as the pendulum datetime DAG(...) takes."""
    import pendulum

    return pendulum.datetime(*START_DATE, tz="UTC")


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
    # The directory platform.json was read from (the chart's other files sit beside it).
    directory: str = DEFAULT_PLATFORM_DIR
    # DAG id -> schedule (cron expression or preset), chart value pipelines.schedules.
    schedules: dict[str, str] = field(default_factory=dict)
    # Secret name -> keys tasks may reference (chart value pipelines.secrets).
    task_secrets: dict[str, list[str]] = field(default_factory=dict)
    # Longest a GPU task's pod waits Pending for GPUs (chart value pools.gpuMaxWaitSeconds).
    gpu_max_wait_seconds: int = 3600

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

    def schedule(self, dag_id: str) -> str | None:
        """The DAG's schedule in this environment (`pipelines.schedules`); None = triggered only."""
        return self.schedules.get(dag_id) or None

    def dag_args(self, dag_id: str, *tags: str, scheduled: bool = True) -> dict[str, Any]:
        """What every platform DAG passes to DAG(...) first: its id, its schedule in this environment
        (`schedule()`; `scheduled=False`: triggered only, whatever the values say), the platform's
        start date (`start_date()`), and the tags `mlops` + `tags`."""
        return {
            "dag_id": dag_id,
            "schedule": self.schedule(dag_id) if scheduled else None,
            "start_date": start_date(),
            "tags": ["mlops", *tags],
        }

    def dag_defaults(self, owner: str = DEFAULT_OWNER, retries: int = 2) -> dict[str, Any]:
        """What every platform DAG passes to DAG(...) last: owner, retries with exponential backoff,
        the workspace path filter, no catchup, and the failure alerts the chart configures
        (`pipelines.alerts`, mlops_platform.alerts) as `on_failure_callback`."""
        out: dict[str, Any] = {
            "default_args": {
                "owner": owner,
                "retries": retries,
                "retry_delay": timedelta(seconds=30),
                "retry_exponential_backoff": True,
                "max_retry_delay": timedelta(minutes=10),
            },
            "user_defined_filters": {PATH_FILTER: path_segment},
            "catchup": False,
            "max_active_runs": 4,
        }
        from .alerts import failure_notifiers

        notifiers = failure_notifiers(self.raw.get("alerts"))
        if notifiers:
            out["on_failure_callback"] = notifiers
        return out

    @property
    def secret_refs(self) -> list[str]:
        """The allowed references `<secret>/<key>` (pipelines.secrets)."""
        return [f"{name}/{key}" for name, keys in self.task_secrets.items() for key in keys]

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


def parse_platform(doc: Any, where: str = PLATFORM_FILE, schema_file: str | None = None) -> PlatformConfig:
    """Validate a decoded platform.json document and return its typed view.

    The document is checked against the JSON schema the chart ships beside it
    (`platform.schema.json`, default: the one in the platform directory); only what a schema
    cannot state is checked here (the schema version first, for its message; cross-field rules).
    """
    if not isinstance(doc, dict):
        raise PlatformConfigError(f"{where}: the document must be a JSON object")
    version = doc.get("schemaVersion")
    if version != SUPPORTED_SCHEMA_VERSION:
        raise PlatformConfigError(
            f"{where}: schemaVersion {version!r} is not supported (this DAG code reads "
            f"{SUPPORTED_SCHEMA_VERSION}); upgrade the chart and the DAGs together"
        )

    validator = schema_validator(schema_file or str(platform_dir() / SCHEMA_FILE), PlatformConfigError, PLATFORM_FILE)
    shown = schema_problems(validator, doc)
    if shown:
        raise PlatformConfigError(f"{where}: {shown}")
    # Cross-field rules.
    if doc["defaultProfile"] not in doc["profiles"]:
        raise PlatformConfigError(
            f"{where}: key 'defaultProfile' is {doc['defaultProfile']!r}, not one of: {', '.join(doc['profiles'])}"
        )
    if doc["registry"]["enabled"] and not doc["registry"]["pullSecret"]:
        raise PlatformConfigError(f"{where}: key 'registry.pullSecret' is required when registry.enabled")
    schedules = dict(doc.get("schedules") or {})
    for dag_id, expression in schedules.items():
        if not expression.startswith("@"):
            from croniter import croniter

            if not croniter.is_valid(expression):
                raise PlatformConfigError(
                    f"{where}: key 'schedules.{dag_id}': {expression!r} is not a valid cron expression"
                )
    templates_dir = os.environ.get(POD_TEMPLATES_DIR_ENV)
    profiles: dict[str, Profile] = {}
    for name, spec in doc["profiles"].items():
        template = spec["podTemplateFile"]
        if templates_dir:
            template = str(Path(templates_dir) / Path(template).name)
        profiles[name] = Profile(name, spec["gpus"], template, spec.get("description") or "")
    workspace, datasets, registry = doc["workspace"], doc["datasets"], doc["registry"]
    return PlatformConfig(
        path=where,
        release=doc["release"],
        namespace=doc["namespace"],
        task_namespace=doc["tasks"]["namespace"],
        service_account_name=doc["tasks"]["serviceAccountName"] or None,
        registry_enabled=registry["enabled"],
        registry_host=registry["host"],
        pull_secret=registry["pullSecret"] or None,
        image_prefix=doc["images"]["prefix"].rstrip("/"),
        trainer_image=doc["images"]["trainer"],
        mlflow_image=doc["images"]["mlflow"],
        profiles=profiles,
        default_profile=doc["defaultProfile"],
        gpu_pool=doc["gpuPool"]["name"],
        gpu_pool_slots=doc["gpuPool"]["slots"],
        tracking_uri=doc["mlflow"]["trackingUri"],
        workspace_enabled=workspace["enabled"],
        workspace_mount_path=workspace["mountPath"],
        workspace_subpath_env=workspace["subPathEnv"],
        datasets_enabled=datasets["enabled"],
        datasets_mount_path=datasets["mountPath"],
        serving=dict(doc["serving"]),
        raw=doc,
        directory=str(Path(where).parent if Path(where).is_absolute() else platform_dir()),
        schedules=schedules,
        task_secrets={k: list(v) for k, v in (doc.get("taskSecrets") or {}).items()},
        gpu_max_wait_seconds=int(doc["gpuPool"].get("maxWaitSeconds", 3600)),
    )


_CACHE: dict[tuple[str, float], PlatformConfig] = {}


def load_platform(directory: str | os.PathLike[str] | None = None) -> PlatformConfig:
    """Read and validate `<dir>/platform.json` (cached per path and modification time)."""
    path = Path(directory) / PLATFORM_FILE if directory else platform_dir() / PLATFORM_FILE
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise PlatformConfigError(
            f"{path} not found: the chart mounts ConfigMap <mounts.configMapPrefix>-platform at "
            f"{DEFAULT_PLATFORM_DIR}/ (set {PLATFORM_DIR_ENV} to read it from elsewhere)"
        ) from None
    key = (str(path), stat.st_mtime)
    if key not in _CACHE:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PlatformConfigError(f"{path}: not valid JSON ({exc})") from None
        _CACHE[key] = parse_platform(doc, str(path), str(path.parent / SCHEMA_FILE))
    return _CACHE[key]
