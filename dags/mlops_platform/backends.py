"""Backend choice of run_job and gpu_sweep: `kubernetes` (task pods) or `basecommand` (NVIDIA Base
Command jobs), a validated `backend` Param with the default from the chart (basecommand.json).

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

from collections.abc import Mapping, Sequence
from typing import Any

from .basecommand import IMAGE_PATTERN, BaseCommandSettings, load_basecommand
from .config import PlatformConfig

KUBERNETES, BASECOMMAND = "kubernetes", "basecommand"
# The default of `ngc_image` where the chart sets no basecommand.image.
FALLBACK_NGC_IMAGE = "nvidia/pytorch:25.01-py3"


def basecommand_settings(cfg: PlatformConfig) -> BaseCommandSettings:
    """The chart's basecommand.json beside platform.json (missing file = backend disabled)."""
    return load_basecommand(cfg.directory)


def ngc_image_param(bc: BaseCommandSettings) -> Any:
    from airflow.sdk import Param

    schema = IMAGE_PATTERN.schema()
    schema.pop("type")
    return Param(
        bc.image or FALLBACK_NGC_IMAGE,
        type="string",
        **schema,
        title="NGC image",
        description="Image of a Base Command job: org[/team]/repo:tag in NVIDIA's registry (not `latest`); "
        "the platform registry is not reachable from NGC",
    )


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


def basecommand_job(task_id: str, bc: BaseCommandSettings, **kwargs: Any) -> Any:
    """A BaseCommandJobOperator with the chart's settings (instance types, ACE, connection, org,
    team, poll interval); `kwargs` give the job (image, command, profile, ...)."""
    from .basecommand_operator import BaseCommandJobOperator

    return BaseCommandJobOperator(task_id=task_id, **job_settings(bc), **kwargs)


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
