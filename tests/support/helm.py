"""Render the umbrella chart with the pinned helm and return validated Kubernetes objects.

Every render is the whole umbrella: our templates and the official Airflow chart 1.20.0
(put into charts/airflow-mlops/charts/ by `make deps`; tests/conftest.py stops the session
with one line when it is missing). `render_chart` returns our objects, or all of them with
`include_subchart=True`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from . import paths


class HelmError(RuntimeError):
    """helm exited non-zero; the message carries its stderr."""


def chart_path() -> Path:
    """The umbrella chart directory (the official chart must be in its charts/)."""
    if not paths.official_chart_present():
        raise HelmError(paths.SUBCHART_MISSING_REASON)
    return paths.CHART_DIR


def run_helm(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([paths.helm_binary(), *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise HelmError(f"helm {' '.join(args[:2])} failed:\n{proc.stderr.strip()}")
    return proc


# Rendering the umbrella costs about 1.5 s of CPU, mostly the official chart. Renders are
# memoised on disk under .cache/helm-render/, keyed by everything that decides the output:
# the helm binary, every file of the chart directory (the official chart archive included),
# the arguments and the content of every values file. MLOPS_RENDER_CACHE=0 turns it off.
RENDER_CACHE = paths.REPO / ".cache" / "helm-render"


@functools.cache
def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _render_key(args: list[str], values_files: list[str]) -> str:
    helm = Path(paths.helm_binary())
    digest = hashlib.sha256()
    stat = helm.stat()
    digest.update(f"{helm}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    digest.update(json.dumps(args).encode())
    for f in values_files:
        digest.update(Path(f).read_bytes() + b"\0")
    chart = Path(args[2]) if len(args) > 2 else None
    if chart is not None and chart.is_dir():
        digest.update(_tree_digest(chart.resolve()).encode())
    return digest.hexdigest()


def _cached_helm_keyed(
    args: list[str], key_args: list[str], values_files: list[str]
) -> tuple[int, str, str]:
    """(returncode, stdout, stderr) of `helm <args>`, memoised on disk under key_args + files."""
    use_cache = os.environ.get("MLOPS_RENDER_CACHE", "1") != "0"
    entry = RENDER_CACHE / f"{_render_key(key_args, values_files)}.json" if use_cache else None
    if entry is not None and entry.exists():
        rc, out, err = json.loads(entry.read_text())
        return rc, out, err
    proc = run_helm(args, check=False)
    if entry is not None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps([proc.returncode, proc.stdout, proc.stderr]))
        os.replace(tmp, entry)
    return proc.returncode, proc.stdout, proc.stderr


def helm_template(
    values: dict[str, Any] | None = None,
    values_files: Iterable[Path | str] = (),
    show_only: Iterable[str] = (),
    kube_version: str = paths.DEFAULT_KUBE_VERSION,
    namespace: str = "airflow-mlops",
    release: str = "test",
    chart: Path | None = None,
    extra_args: Iterable[str] = (),
) -> str:
    """Run `helm template` and return its stdout (raises HelmError with stderr)."""
    args = [
        "template",
        release,
        str(chart or chart_path()),
        "--namespace",
        namespace,
        "--kube-version",
        kube_version,
    ]
    files = [str(f) for f in values_files]
    for f in files:
        args += ["--values", f]
    tmp = None
    if values:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        json.dump(values, tmp)  # JSON is YAML
        tmp.close()
        files.append(tmp.name)
        args += ["--values", "<values>"]
    for s in show_only:
        args += ["--show-only", s]
    args += list(extra_args)
    try:
        real_args = [tmp.name if (a == "<values>" and tmp) else a for a in args]
        # The key names values files by content: temporary paths must not defeat the cache.
        key_args = [a for a in args if a not in files]
        rc, out, err = _cached_helm_keyed(real_args, key_args, files)
        if rc != 0:
            raise HelmError(f"helm {' '.join(args[:2])} failed:\n{err.strip()}")
        return out
    finally:
        if tmp:
            Path(tmp.name).unlink(missing_ok=True)


def parse_documents(text: str) -> list[dict[str, Any]]:
    """Split rendered YAML into objects, keeping the `# Source:` file of each."""
    objects: list[dict[str, Any]] = []
    for doc in text.split("\n---"):
        source = None
        for line in doc.splitlines():
            if line.startswith("# Source: "):
                source = line[len("# Source: ") :].strip()
                break
        obj = yaml.safe_load(doc)
        if not obj:
            continue
        if not isinstance(obj, dict):
            raise ValueError(f"{source}: rendered document is not a mapping: {obj!r}")
        obj.setdefault("metadata", {})
        # Keep the source template out of the object, beside it.
        objects.append({**obj, "__source__": source})
    return objects


def is_subchart_object(obj: dict[str, Any]) -> bool:
    """True for an object rendered by a subchart (its source is under `<chart>/charts/`)."""
    return (obj.get("__source__") or "").startswith(f"{paths.CHART_DIR.name}/charts/")


def template_folder(obj: dict[str, Any]) -> str | None:
    """The folder under our templates/ that rendered `obj` (`serving` for
    `airflow-mlops/templates/serving/serving-deployment.yaml`), None for the official chart's."""
    parts = (obj.get("__source__") or "").split("/")
    if len(parts) > 3 and parts[:2] == [paths.CHART_DIR.name, "templates"]:
        return parts[2]
    return None


def strip_source(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "__source__"}


def render_chart(
    values: dict[str, Any] | None = None,
    show_only: Iterable[str] = (),
    kube_version: str = paths.DEFAULT_KUBE_VERSION,
    namespace: str = "airflow-mlops",
    values_files: Iterable[Path | str] = (),
    release: str = "test",
    validate: bool = True,
    validate_versions: Iterable[str] | None = None,
    include_subchart: bool = False,
    template_folders: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Render the chart and return its objects.

    Every returned object is validated strictly against the Kubernetes schema of each version
    in `validate_versions` (default: every tested version, paths.KUBE_VERSIONS) and every
    resource quantity is parsed. Objects carry their template path under `__source__`.
    The official chart's objects are rendered too (and Helm validates the `airflow:` values
    against its schema) but returned only with `include_subchart=True`.
    """
    text = helm_template(
        values=values,
        values_files=values_files,
        show_only=show_only,
        kube_version=kube_version,
        namespace=namespace,
        release=release,
    )
    objects = parse_documents(text)
    if not include_subchart:
        objects = [o for o in objects if not is_subchart_object(o)]
    folders = set(template_folders)
    if folders:
        objects = [o for o in objects if template_folder(o) in folders]
    if validate:
        # Imported here: .venv-mlflow renders with this module but has no kubernetes-validate.
        from .k8s import validate_objects

        validate_objects(objects, versions=validate_versions or paths.KUBE_VERSIONS)
    return objects


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Objects of a kind (and name), for assertions."""
    return [
        o for o in objects if o.get("kind") == kind and (name is None or o["metadata"].get("name") == name)
    ]
