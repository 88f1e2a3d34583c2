"""The harness itself: it must reject invalid objects and respect helm's dependency rules."""

from __future__ import annotations

import subprocess

import pytest

from tests.support import paths
from tests.support.helm import HelmError, parse_documents, render_chart
from tests.support.k8s import ObjectValidationError, validate_objects

BAD_DEPLOYMENT = """\
---
# Source: airflow-mlops/templates/bad/bad-deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
spec:
  replica: 2
  selector:
    matchLabels: {app: broken}
  template:
    metadata:
      labels: {app: broken}
    spec:
      containers:
        - name: main
          image: busybox:1.36
"""

BAD_QUANTITY_POD = """\
---
# Source: airflow-mlops/templates/bad/bad-pod.yaml
apiVersion: v1
kind: Pod
metadata:
  name: greedy
spec:
  containers:
    - name: main
      image: busybox:1.36
      resources:
        limits:
          nvidia.com/gpu: "1.5 GPUs"
"""


@pytest.mark.parametrize("version", paths.KUBE_VERSIONS)
def test_unknown_field_is_rejected_with_file_kind_name_and_error(version: str) -> None:
    objects = parse_documents(BAD_DEPLOYMENT)
    with pytest.raises(ObjectValidationError) as excinfo:
        validate_objects(objects, versions=[version])
    message = str(excinfo.value)
    assert "templates/bad/bad-deployment.yaml" in message
    assert "Deployment/broken" in message
    assert "replica" in message
    assert f"Kubernetes {version}" in message


def test_bad_quantity_is_rejected_although_the_schema_accepts_it() -> None:
    objects = parse_documents(BAD_QUANTITY_POD)
    with pytest.raises(ObjectValidationError) as excinfo:
        validate_objects(objects, versions=paths.KUBE_VERSIONS)
    message = str(excinfo.value)
    assert "Pod/greedy" in message
    assert "nvidia.com/gpu='1.5 GPUs' is not a Kubernetes quantity" in message
    # only the quantity check fails: the schema itself lets the string through
    assert "schema" not in message


def test_valid_object_passes() -> None:
    good = BAD_QUANTITY_POD.replace('"1.5 GPUs"', '"1"')
    validate_objects(parse_documents(good), versions=paths.KUBE_VERSIONS)


def test_unknown_top_level_value_is_rejected_by_our_schema() -> None:
    with pytest.raises(HelmError) as excinfo:
        render_chart(values={"profilez": {}})
    message = str(excinfo.value)
    assert "profilez" in message
    assert '"profilez" is not a known key of the values. Allowed: the keys' in message


def test_no_stand_in_for_the_official_chart_is_committed() -> None:
    """charts/airflow-mlops/charts/ is filled only by `make deps`, never by git."""
    out = subprocess.run(
        ["git", "ls-files", "--", str(paths.SUBCHART_DIR.relative_to(paths.REPO))],
        cwd=paths.REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "", f"files committed under charts/airflow-mlops/charts/: {out}"
