"""Base Command job specs: one job's inputs validated (name, NGC image, command as a list, instance
type, ACE, time limit, dataset and workspace mounts, env) and its job-create body; the `MLOPS_RESULT`
line a job prints to report its result.

Standard library only (cheap at parse time). Names follow mlops_platform.names: the whole string,
no control characters (`.match()`/`.pattern` as before).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..names import ENV_NAME, MOUNT_PATH, NGC_IMAGE, NameRule, excerpt

# Mount point of the job's result directory (runPolicy and resultContainerMountPoint).
DEFAULT_RESULT_DIR = "/results"
MIN_TIME_LIMIT = 60
MAX_TIME_LIMIT = 30 * 24 * 3600
# A line the job prints to report its result: `MLOPS_RESULT {"metric": 0.97}` (last one wins).
RESULT_MARKER = "MLOPS_RESULT "

ORG_PATTERN = NameRule("NGC org or team", r"[A-Za-z0-9][A-Za-z0-9_-]*", 64)
ACE_PATTERN = NameRule("ACE name", r"[a-z0-9][a-z0-9._-]*", 63)
INSTANCE_PATTERN = NameRule("instance type", r"[a-z0-9][a-z0-9._-]*", 63)
# NGC registry image (org[/team]/repo:tag, optionally nvcr.io/ exactly); no other host, no `latest`.
IMAGE_PATTERN = NGC_IMAGE
JOB_NAME_PATTERN = NameRule("job name", r"[A-Za-z0-9][A-Za-z0-9_.-]*", 128)
MOUNT_PATTERN = MOUNT_PATH
ENV_NAME_PATTERN = ENV_NAME
WORKSPACE_ID_PATTERN = NameRule("workspace id", r"[A-Za-z0-9][A-Za-z0-9_-]*", 128)
DATASET_ID_PATTERN = NameRule("dataset id", r"[A-Za-z0-9_-]+", 64)
DATASET_NAME_PATTERN = NameRule("dataset name", r"[A-Za-z0-9][A-Za-z0-9_.-]*", 128)


class BaseCommandError(RuntimeError):
    """Base class of every error of this module (messages never contain credentials)."""


class BaseCommandConfigError(BaseCommandError, ValueError):
    """Bad input: a job spec or connection value; the message names the key."""



def _check(key: str, value: Any, pattern: NameRule) -> None:
    if not pattern.ok(value):
        raise BaseCommandConfigError(f"{key} {excerpt(value)} is not valid ({pattern.describe()})")



# --- job spec --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """One Base Command job, validated. `command` is an argument list (never a shell string)."""

    name: str
    image: str
    command: tuple[str, ...]
    instance_type: str
    ace: str
    time_limit_seconds: int
    datasets: tuple[tuple[str, str], ...] = ()  # (dataset id, mount point)
    workspaces: tuple[tuple[str, str, str], ...] = ()  # (workspace id, mount point, RO|RW)
    result_dir: str = DEFAULT_RESULT_DIR
    env: tuple[tuple[str, str], ...] = ()
    # Datasets named, not numbered: (name, mount point), resolved to ids before submission.
    dataset_names: tuple[tuple[str, str], ...] = ()

    def with_dataset_ids(self, ids: Mapping[str, str]) -> JobSpec:
        """This spec with every named dataset replaced by its id (`ids`: name -> id)."""
        missing = [n for n, _ in self.dataset_names if n not in ids]
        if missing:
            raise BaseCommandConfigError(f"datasets: no id for {missing}")
        resolved = tuple((str(ids[n]), m) for n, m in self.dataset_names)
        return replace(self, datasets=self.datasets + resolved, dataset_names=())

    def body(self) -> dict[str, Any]:
        """The job-create request body (every dataset must be an id by now)."""
        if self.dataset_names:
            raise BaseCommandConfigError(
                f"datasets {[n for n, _ in self.dataset_names]} are names: resolve them first (with_dataset_ids)"
            )
        return {
            "name": self.name,
            "aceName": self.ace,
            "aceInstance": self.instance_type,
            "dockerImageName": self.image,
            # The API takes one command line; each argument is quoted so the list stays a list.
            "command": shlex.join(self.command),
            "datasetMounts": [{"id": int(d) if d.isdigit() else d, "containerMountPoint": m} for d, m in self.datasets],
            "workspaceMounts": [{"id": w, "containerMountPoint": m, "mountMode": mode} for w, m, mode in self.workspaces],
            "resultContainerMountPoint": self.result_dir,
            "runPolicy": {"totalRuntimeSeconds": self.time_limit_seconds, "preemptClass": "RUNONCE"},
            "envs": [{"name": k, "value": v} for k, v in self.env],
            "jobPriority": "NORMAL",
            "jobOrder": 50,
            "replicaCount": 1,
        }


def job_spec(
    *,
    name: str,
    image: str,
    command: Any,
    instance_type: Any,
    ace: Any,
    time_limit_seconds: Any,
    allowed_instance_types: Sequence[str] | None = None,
    datasets: Any = None,
    workspaces: Any = None,
    result_dir: Any = DEFAULT_RESULT_DIR,
    env: Any = None,
) -> JobSpec:
    """Validate every input and return a JobSpec; errors name the key and what is allowed."""
    if not isinstance(name, str) or not JOB_NAME_PATTERN.match(name):
        raise BaseCommandConfigError(f"name {name!r} is not a valid job name ({JOB_NAME_PATTERN.pattern})")
    if not isinstance(image, str) or not IMAGE_PATTERN.match(image):
        raise BaseCommandConfigError(
            f"image {image!r} is not an NGC image reference org[/team]/repo:tag (tag not 'latest')"
        )
    if isinstance(command, str) or not isinstance(command, (list, tuple)):
        raise BaseCommandConfigError(f"command must be a list of strings, got {type(command).__name__}: {command!r}")
    if not command or not all(isinstance(c, str) and c and "\x00" not in c for c in command):
        raise BaseCommandConfigError("command must be a non-empty list of non-empty strings")
    if not isinstance(instance_type, str) or not INSTANCE_PATTERN.match(instance_type):
        raise BaseCommandConfigError(f"instance_type {instance_type!r} is not a valid instance type name")
    if allowed_instance_types is not None and instance_type not in allowed_instance_types:
        raise BaseCommandConfigError(
            f"instance_type {instance_type!r} is not declared in the chart's basecommand.instanceTypes "
            f"(declared: {', '.join(sorted(set(allowed_instance_types))) or 'none'})"
        )
    if not isinstance(ace, str) or not ACE_PATTERN.match(ace):
        raise BaseCommandConfigError(f"ace {ace!r} is not a valid ACE name ({ACE_PATTERN.pattern})")
    if isinstance(time_limit_seconds, bool) or not isinstance(time_limit_seconds, int):
        raise BaseCommandConfigError(f"time_limit_seconds must be an integer, got {time_limit_seconds!r}")
    if not MIN_TIME_LIMIT <= time_limit_seconds <= MAX_TIME_LIMIT:
        raise BaseCommandConfigError(
            f"time_limit_seconds {time_limit_seconds} is outside {MIN_TIME_LIMIT}..{MAX_TIME_LIMIT}"
        )
    if not isinstance(result_dir, str) or not MOUNT_PATTERN.match(result_dir):
        raise BaseCommandConfigError(f"result_dir {excerpt(result_dir)}: {MOUNT_PATTERN.describe()} (never / or a system directory)")
    ds: list[tuple[str, str]] = []
    named: list[tuple[str, str]] = []
    for i, item in enumerate(datasets or []):
        if not isinstance(item, Mapping) or set(item) not in ({"id", "mount"}, {"name", "mount"}):
            raise BaseCommandConfigError(
                f"datasets[{i}] must be {{'name': ..., 'mount': '/path'}} or {{'id': ..., 'mount': '/path'}}, got {item!r}"
            )
        if not isinstance(item["mount"], str) or not MOUNT_PATTERN.match(item["mount"]):
            raise BaseCommandConfigError(f"datasets[{i}].mount {excerpt(item['mount'])}: {MOUNT_PATTERN.describe()} (never / or a system directory)")
        if "name" in item:
            if not isinstance(item["name"], str) or not DATASET_NAME_PATTERN.match(item["name"]):
                raise BaseCommandConfigError(
                    f"datasets[{i}].name {item['name']!r} is not a dataset name ({DATASET_NAME_PATTERN.pattern})"
                )
            named.append((item["name"], item["mount"]))
            continue
        ident = str(item["id"])
        if isinstance(item["id"], bool) or not DATASET_ID_PATTERN.match(ident):
            raise BaseCommandConfigError(f"datasets[{i}].id {item['id']!r} is not a dataset id")
        ds.append((ident, item["mount"]))
    ws: list[tuple[str, str, str]] = []
    for i, item in enumerate(workspaces or []):
        if not isinstance(item, Mapping) or not {"id", "mount"} <= set(item) <= {"id", "mount", "mode"}:
            raise BaseCommandConfigError(f"workspaces[{i}] must be {{'id', 'mount', 'mode'}}, got {item!r}")
        if not isinstance(item["id"], str) or not WORKSPACE_ID_PATTERN.match(item["id"]):
            raise BaseCommandConfigError(f"workspaces[{i}].id {item['id']!r} is not a workspace id")
        if not isinstance(item["mount"], str) or not MOUNT_PATTERN.match(item["mount"]):
            raise BaseCommandConfigError(f"workspaces[{i}].mount {excerpt(item['mount'])}: {MOUNT_PATTERN.describe()} (never / or a system directory)")
        mode = item.get("mode", "RW")
        if mode not in ("RO", "RW"):
            raise BaseCommandConfigError(f"workspaces[{i}].mode {mode!r} must be RO or RW")
        ws.append((item["id"], item["mount"], mode))
    mounts = [m for _, m in ds] + [m for _, m in named] + [m for _, m, _ in ws] + [result_dir]
    if len(set(mounts)) != len(mounts):
        raise BaseCommandConfigError(f"mount points must be distinct, got {mounts}")
    envs: list[tuple[str, str]] = []
    if env is not None and not isinstance(env, Mapping):
        raise BaseCommandConfigError(f"env must be a mapping NAME -> value, got {type(env).__name__}")
    for k, v in (env or {}).items():
        if not isinstance(k, str) or not ENV_NAME_PATTERN.match(k):
            raise BaseCommandConfigError(f"env name {k!r} must match {ENV_NAME_PATTERN.pattern}")
        envs.append((k, str(v)))
    return JobSpec(
        name=name,
        image=image,
        command=tuple(command),
        instance_type=instance_type,
        ace=ace,
        time_limit_seconds=time_limit_seconds,
        datasets=tuple(ds),
        workspaces=tuple(ws),
        result_dir=result_dir,
        env=tuple(envs),
        dataset_names=tuple(named),
    )


def job_name(*parts: str) -> str:
    """A valid job name from e.g. dag id, task id, run id (unsafe characters -> '-')."""
    text = "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "-", str(p)).strip("-._") for p in parts if p)
    return (text or "job")[:128]


def parse_result(log_text: str) -> dict[str, Any] | None:
    """The last `MLOPS_RESULT {json}` line of a job log, decoded (None when there is none)."""
    import json

    found = None
    for line in log_text.splitlines():
        idx = line.find(RESULT_MARKER)
        if idx >= 0:
            try:
                value = json.loads(line[idx + len(RESULT_MARKER) :])
            except ValueError:
                continue
            if isinstance(value, dict):
                found = value
    return found
