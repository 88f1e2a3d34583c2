"""Render the chart with the pinned helm and return validated Kubernetes objects.

`helm template` refuses a chart whose declared dependency is missing from charts/,
whatever its `condition`. When the official Airflow chart has not been downloaded
(no internet here), our layer is rendered alone from a temporary copy of the chart whose
Chart.yaml drops the dependency; this is announced once in the test output. When the
official chart is present, the whole umbrella is rendered.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from . import paths


class HelmError(RuntimeError):
    """helm exited non-zero; the message carries its stderr."""


@functools.lru_cache(maxsize=1)
def _layer_only_chart() -> Path:
    """A temporary copy of the chart without the `airflow` dependency (cached per session)."""
    tmp = Path(tempfile.mkdtemp(prefix="airflow-mlops-layer-"))
    dst = tmp / paths.CHART_DIR.name
    shutil.copytree(paths.CHART_DIR, dst, ignore=shutil.ignore_patterns("charts", "*.tgz"))
    chart = yaml.safe_load((dst / "Chart.yaml").read_text())
    chart.pop("dependencies", None)
    (dst / "Chart.yaml").write_text(yaml.safe_dump(chart, sort_keys=False))
    (dst / "Chart.lock").unlink(missing_ok=True)
    print(
        f"\n[render_chart] {paths.SUBCHART_MISSING_REASON}; rendering the airflow-mlops "
        f"platform layer alone from a copy without the dependency: {dst}",
        file=sys.stderr,
    )
    return dst


def chart_path() -> Path:
    """The chart directory helm should render: the real one when the subchart is present."""
    if paths.official_chart_present():
        return paths.CHART_DIR
    return _layer_only_chart()


def rendering_mode() -> str:
    return "umbrella" if paths.official_chart_present() else "layer-only"


def run_helm(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([paths.helm_binary(), *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise HelmError(f"helm {' '.join(args[:2])} failed:\n{proc.stderr.strip()}")
    return proc


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
    for f in values_files:
        args += ["--values", str(f)]
    tmp = None
    if values:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        json.dump(values, tmp)  # JSON is YAML
        tmp.close()
        args += ["--values", tmp.name]
    for s in show_only:
        args += ["--show-only", s]
    args += list(extra_args)
    try:
        return run_helm(args).stdout
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
) -> list[dict[str, Any]]:
    """Render the chart and return its objects.

    Every returned object is validated strictly against the Kubernetes schema of each version
    in `validate_versions` (default: every tested version, paths.KUBE_VERSIONS) and every
    resource quantity is parsed. Objects carry their template path under `__source__`.
    When the official chart is present, its objects are rendered too (Helm validates the
    `airflow:` values against its schema either way) but returned only with
    `include_subchart=True`: the other tests are about our own templates.
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
