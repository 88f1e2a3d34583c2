"""Well-known paths of the repository and of the shared reference data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "airflow-mlops"
SUBCHART_DIR = CHART_DIR / "charts"
VALUES_DIR = REPO / "values"
CI_VALUES_DIR = CHART_DIR / "ci"
DAGS_DIR = REPO / "dags"
IMAGES_DIR = REPO / "images"
SCRIPTS_DIR = REPO / "scripts"
# The official chart's values.yaml / values.schema.json, shipped beside the checkout
# as data (never copied into the repository).
REFERENCE_DIR = Path(
    os.environ.get(
        "AIRFLOW_CHART_REFERENCE_DIR",
        REPO.parent / "shared" / "reference" / "airflow-chart-1.20.0",
    )
)
OFFICIAL_CHART_VERSION = "1.20.0"
# CustomResourceDefinitions of Argo CD (Application, ApplicationSet, AppProject) and Flux
# (HelmRelease, GitRepository, HelmRepository, OCIRepository), shipped beside the checkout as
# data: the schemas of the GitOps manifests under values/gitops/. CI has them; the tests fail
# (never skip) when they are missing.
GITOPS_CRDS_DIR = Path(
    os.environ.get("MLOPS_GITOPS_CRDS_DIR", REPO.parent / "shared" / "reference" / "gitops-crds")
)
GITOPS_DIR = VALUES_DIR / "gitops"
SECRETS_CATALOG_DIR = VALUES_DIR / "secrets"

# Kubernetes versions every rendered object is validated against (README "Versions").
KUBE_VERSIONS = ("1.33", "1.34", "1.35")
DEFAULT_KUBE_VERSION = KUBE_VERSIONS[-1]


def helm_binary() -> str:
    """HELM (the make targets set it: scripts/pinned-helm), else the pinned helm from ./bin
    (built by `make tools`), else helm from PATH."""
    given = os.environ.get("HELM", "").strip()
    if given:
        return given
    local = REPO / "bin" / "helm"
    if local.exists():
        return str(local)
    found = shutil.which("helm")
    if not found:
        raise RuntimeError("helm not found: run `make tools` (builds the pinned helm into ./bin)")
    return found


def official_chart_present() -> bool:
    """True when `make deps` put the official chart into charts/airflow-mlops/charts/."""
    return SUBCHART_DIR.is_dir() and any(
        p.name.startswith("airflow-") or p.name == "airflow" for p in SUBCHART_DIR.iterdir()
    )


SUBCHART_MISSING_REASON = (
    "the official Airflow chart 1.20.0 is not in charts/airflow-mlops/charts/: run `make deps` "
    "(set AIRFLOW_CHART_ARCHIVE=/path/to/airflow-1.20.0.tgz where https://airflow.apache.org "
    "cannot be reached)"
)


def values_files() -> list[Path]:
    """Every values file the chart must accept: values/*.yaml and ci/*-values.yaml."""
    files = sorted(VALUES_DIR.glob("*.yaml")) + sorted(CI_VALUES_DIR.glob("*-values.yaml"))
    return files
