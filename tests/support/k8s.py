"""Kubernetes object validation: strict schemas per version, resource quantities, PSS restricted."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
from kubernetes.utils import parse_quantity

# kubernetes-validate reads and parses two JSON schema files from disk on every call
# (about 65% of the validation time of a render). The schemas are only read, never
# modified, so parse each file once per process.
if not hasattr(kubernetes_validate.utils.schema_contents, "cache_info"):
    kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
        kubernetes_validate.utils.schema_contents
    )


class ObjectValidationError(AssertionError):
    """One or more rendered objects are invalid; the message lists each with its source."""


def _full_version(version: str) -> str:
    """'1.35' -> the newest patch version kubernetes-validate knows for that minor."""
    return _known_versions().get(version, version)


@functools.lru_cache(maxsize=1)
def _known_versions() -> dict[str, str]:
    from kubernetes_validate import utils

    known: dict[str, str] = {}
    for v in utils.all_versions():
        minor = ".".join(v.split(".")[:2])
        known[minor] = v
    return known


def describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('__source__') or '<unknown file>'}: {obj.get('kind')}/{meta.get('name')}"


def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (path, podSpec) for every pod spec an object carries (Pod, workloads, Jobs, CronJobs)."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        yield "spec", spec
    elif kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        yield "spec.template.spec", (spec.get("template") or {}).get("spec") or {}
    elif kind == "CronJob":
        yield (
            "spec.jobTemplate.spec.template.spec",
            ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec") or {},
        )


def containers(pod_spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in pod_spec.get(field) or []:
            yield field, c


def quantities(obj: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every resource quantity of an object: container resources, PVC requests, PV capacity."""
    for path, spec in pod_specs(obj):
        for field, c in containers(spec):
            res = c.get("resources") or {}
            for section in ("limits", "requests"):
                for key, value in (res.get(section) or {}).items():
                    yield f"{path}.{field}[{c.get('name')}].resources.{section}.{key}", value
        for section in ("overhead",):
            for key, value in (spec.get(section) or {}).items():
                yield f"{path}.{section}.{key}", value
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "PersistentVolumeClaim":
        for section in ("requests", "limits"):
            for key, value in ((spec.get("resources") or {}).get(section) or {}).items():
                yield f"spec.resources.{section}.{key}", value
    if kind == "PersistentVolume":
        for key, value in (spec.get("capacity") or {}).items():
            yield f"spec.capacity.{key}", value
    if kind == "ResourceQuota":
        for key, value in (spec.get("hard") or {}).items():
            yield f"spec.hard.{key}", value


def object_errors(obj: dict[str, Any], versions: Iterable[str]) -> list[str]:
    """Every schema and quantity error of one object, each naming file, kind and name."""
    key = json.dumps(obj, sort_keys=True, default=str)
    return list(_object_errors(key, tuple(versions)))


@functools.lru_cache(maxsize=4096)
def _object_errors(key: str, versions: tuple[str, ...]) -> tuple[str, ...]:
    """object_errors for one object (as JSON), memoised: many tests render the same objects."""
    obj = json.loads(key)
    errors: list[str] = []
    clean = {k: v for k, v in obj.items() if k != "__source__"}
    for version in versions:
        try:
            kubernetes_validate.validate(clean, _full_version(version), strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path) or "<root>"
            errors.append(f"{describe(obj)}: Kubernetes {version} schema: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{describe(obj)}: Kubernetes {version}: no schema: {exc}")
        except kubernetes_validate.InvalidSchemaError as exc:
            errors.append(f"{describe(obj)}: Kubernetes {version}: invalid schema: {exc}")
    for path, value in quantities(clean):
        try:
            parse_quantity(value)
        except (ValueError, TypeError) as exc:
            errors.append(f"{describe(obj)}: {path}={value!r} is not a Kubernetes quantity ({exc})")
    return tuple(errors)


def validate_objects(objects: Iterable[dict[str, Any]], versions: Iterable[str]) -> None:
    """Raise ObjectValidationError listing every invalid object (file, kind, name, error)."""
    versions = list(versions)
    errors: list[str] = []
    for obj in objects:
        errors.extend(object_errors(obj, versions))
    if errors:
        raise ObjectValidationError("invalid rendered objects:\n  " + "\n  ".join(errors))


# --- Pod Security Standard "restricted" (chart README, "Security") --------------------------


def restricted_violations(pod_spec: dict[str, Any], where: str) -> list[str]:
    """Violations of the restricted profile for one pod spec (pod + every container)."""
    problems: list[str] = []
    pod_sc = pod_spec.get("securityContext") or {}
    for field, c in containers(pod_spec):
        sc = c.get("securityContext") or {}
        name = f"{where} {field}[{c.get('name')}]"
        run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if run_as_non_root is not True:
            problems.append(f"{name}: runAsNonRoot must be true")
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if uid == 0:
            problems.append(f"{name}: runAsUser must not be 0")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if sc.get("privileged"):
            problems.append(f"{name}: privileged must not be set")
        drop = [d.upper() for d in ((sc.get("capabilities") or {}).get("drop") or [])]
        if "ALL" not in drop:
            problems.append(f"{name}: capabilities.drop must contain ALL")
        added = (sc.get("capabilities") or {}).get("add") or []
        if any(a.upper() != "NET_BIND_SERVICE" for a in added):
            problems.append(f"{name}: capabilities.add may only contain NET_BIND_SERVICE")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile.type must be RuntimeDefault or Localhost")
    for vol in pod_spec.get("volumes") or []:
        if "hostPath" in vol:
            problems.append(f"{where}: volume {vol.get('name')} uses hostPath")
    if pod_spec.get("hostNetwork") or pod_spec.get("hostPID") or pod_spec.get("hostIPC"):
        problems.append(f"{where}: host namespaces must not be shared")
    return problems
