"""scripts/kind/footprint.py: its quantities agree with the Kubernetes client's parser, and the
rendered kind platform fits the Docker Desktop budget."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from tests.support.helm import parse_documents
from tests.support.kind import GIT_SERVER_MANIFEST, KIND_DIR, kind_script

footprint = kind_script("footprint")


@pytest.mark.parametrize(
    "q", ["250m", "1", "0.5", "100Mi", "1Gi", "2G", "1e3", "1500k", "128974848", "129M", "123Mi"]
)
def test_quantities_agree_with_the_kubernetes_client(q: str) -> None:
    from kubernetes.utils import parse_quantity

    assert footprint.parse_quantity(q) == Decimal(parse_quantity(q))


def test_bad_quantity_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        footprint.parse_quantity("12 apples")


def test_pod_requests_count_init_containers_as_max() -> None:
    spec = {
        "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "1Mi"}}}],
        "containers": [
            {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            {"resources": {"requests": {"cpu": "200m", "memory": "64Mi"}}},
        ],
    }
    req = footprint.pod_requests(spec)
    assert req == {"cpu": Decimal(2), "memory": Decimal(128 * 2**20)}


def test_rendered_kind_platform_fits_the_budget(kind_rendered: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(KIND_DIR / "footprint.py"), str(kind_rendered), str(GIT_SERVER_MANIFEST)],
        capture_output=True,
        text=True,
    )
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TOTAL requests" in proc.stdout
    assert "Deployment/git-server x1" in proc.stdout


def test_footprint_over_budget_fails(kind_rendered: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(KIND_DIR / "footprint.py"), str(kind_rendered), str(GIT_SERVER_MANIFEST)],
        capture_output=True,
        text=True,
        env={**os.environ, "MLOPS_KIND_BUDGET_CPU": "500m"},
    )
    assert proc.returncode == 1
    assert "exceed the budget for cpu" in proc.stderr


def test_footprint_counts_replicas() -> None:
    objects = parse_documents(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x"},
                "spec": {
                    "replicas": 3,
                    "template": {"spec": {"containers": [{"resources": {"requests": {"cpu": "100m"}}}]}},
                },
            }
        )
    )
    assert footprint.pod_requests(footprint.pod_spec(objects[0]))["cpu"] == Decimal("0.1")


def test_footprint_names_containers_without_requests(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "scheduler"},
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "scheduler"},
                                {"name": "git-sync", "resources": {"requests": {"cpu": "10m"}}},
                            ]
                        }
                    }
                },
            }
        )
    )
    proc = subprocess.run(
        [sys.executable, str(KIND_DIR / "footprint.py"), str(manifest)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "note: 1 container(s) set no requests" in proc.stdout
    assert "Deployment/scheduler[scheduler]" in proc.stdout
    assert "git-sync" not in proc.stdout.split("note:")[1]
