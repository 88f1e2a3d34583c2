"""The chart's Base Command settings (basecommand.json beside platform.json) and the backend choice
of run_job and gpu_sweep: `kubernetes` (task pods) or `basecommand` (NVIDIA Base Command jobs).

basecommand.json is validated against the JSON schema the chart ships beside it
(`basecommand.schema.json`, the one definition of the format); `parse_basecommand` checks only what a
schema cannot state (rules across keys).

A profile means the same on both backends: on Kubernetes its pod template (GPUs, placement), on Base
Command the instance type the chart declares for it (`basecommand.instanceTypes`, gpu-1 -> an
instance with one GPU, ...). A profile without an instance type cannot run on Base Command.

The image: Base Command runs images of NVIDIA's registry (nvcr.io) only; the platform registry is
not reachable from NGC. A Base Command job therefore runs `ngc_image` (Param, `org[/team]/repo:tag`,
no `latest`), by default the chart's `basecommand.image` (e.g. the team's trainer image pushed to its
NGC private registry with the same tag). `image`/`tag` name the platform registry image of the
Kubernetes backend; no mapping between the two registries is guessed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..common import schema_problems, schema_validator
from .client import DEFAULT_CONN_ID
from .spec import BaseCommandConfigError

if TYPE_CHECKING:
    from ..config import PlatformConfig

BASECOMMAND_FILE = "basecommand.json"
# Its JSON schema, shipped by the chart in the same ConfigMap (files/basecommand.schema.json).
BASECOMMAND_SCHEMA_FILE = "basecommand.schema.json"
KUBERNETES, BASECOMMAND = "kubernetes", "basecommand"
BACKENDS = (KUBERNETES, BASECOMMAND)


@dataclass(frozen=True)
class BaseCommandSettings:
    """The chart's `basecommand` values as rendered into basecommand.json (platform ConfigMap)."""

    enabled: bool = False
    conn_id: str = DEFAULT_CONN_ID
    default_backend: str = KUBERNETES
    org: str | None = None
    team: str | None = None
    ace: str | None = None
    image: str | None = None
    instance_types: Mapping[str, str] = field(default_factory=dict)
    time_limit_seconds: int = 3600
    poll_seconds: float = 30.0

    @property
    def backends(self) -> list[str]:
        return list(BACKENDS) if self.enabled else [KUBERNETES]


def parse_basecommand(doc: Any, where: str, schema_file: str) -> BaseCommandSettings:
    """Validate the decoded basecommand.json against `schema_file` (the chart's schema), then the
    rules across keys; errors name the file and the key."""
    if not isinstance(doc, Mapping):
        raise BaseCommandConfigError(f"{where}: the document must be a JSON object")
    shown = schema_problems(schema_validator(schema_file, BaseCommandConfigError, BASECOMMAND_FILE), doc)
    if shown:
        raise BaseCommandConfigError(f"{where}: {shown}")
    enabled = doc["enabled"]
    if doc["defaultBackend"] == BASECOMMAND and not enabled:
        raise BaseCommandConfigError(
            f"{where}: key 'defaultBackend' is {BASECOMMAND!r}; allowed: {KUBERNETES} (the backend is not enabled)"
        )
    return BaseCommandSettings(
        enabled=enabled,
        conn_id=doc["connId"],
        default_backend=doc["defaultBackend"],
        org=doc["org"],
        team=doc.get("team") or None,
        ace=doc["ace"],
        image=doc.get("image") or None,
        instance_types=dict(doc["instanceTypes"]),
        time_limit_seconds=int(doc["timeLimitSeconds"]),
        poll_seconds=float(doc["pollSeconds"]),
    )


def load_basecommand(directory: str) -> BaseCommandSettings:
    """`<directory>/basecommand.json` (the platform directory); missing file = backend disabled.
    The chart ships `basecommand.schema.json` beside it: the document is validated against it."""
    path = Path(directory) / BASECOMMAND_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return BaseCommandSettings()
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BaseCommandConfigError(f"{path}: not valid JSON ({exc})") from None
    return parse_basecommand(doc, str(path), str(path.with_name(BASECOMMAND_SCHEMA_FILE)))


def basecommand_settings(cfg: PlatformConfig) -> BaseCommandSettings:
    """The chart's basecommand.json beside platform.json (missing file = backend disabled)."""
    return load_basecommand(cfg.directory)


def check_choice(
    backend: Any,
    bc: BaseCommandSettings,
    profiles: Sequence[str],
    *,
    secrets: Mapping[str, str] | None = None,
) -> str:
    """The chosen backend, or a clear error naming the key: a backend the deployment does not offer,
    a profile without a Base Command instance type, Secrets on Base Command (not available there)."""
    if backend not in bc.backends:
        raise ValueError(
            f"key 'backend': {backend!r} is not available here (allowed: {', '.join(bc.backends)}; "
            "basecommand needs basecommand.enabled in the chart's values)"
        )
    if backend == BASECOMMAND:
        missing = sorted({p for p in profiles if p not in bc.instance_types})
        if missing:
            raise ValueError(
                f"key 'profile': {', '.join(missing)} has no Base Command instance type (the chart's "
                f"basecommand.instanceTypes declares: {', '.join(bc.instance_types) or 'none'})"
            )
        if secrets:
            raise ValueError("key 'secrets': Kubernetes Secrets are not available to Base Command jobs")
    return str(backend)


def job_settings(bc: BaseCommandSettings) -> dict[str, Any]:
    """The chart's part of a BaseCommandJobOperator's arguments (also for `.partial()`)."""
    return {
        "instance_types": dict(bc.instance_types),
        "ace": bc.ace,
        "conn_id": bc.conn_id,
        "org": bc.org,
        "team": bc.team,
        "poll_interval": bc.poll_seconds,
    }
