"""The chart renders for every values file and Kubernetes version, and every object validates."""

from __future__ import annotations

import json

import pytest

from tests.support import paths
from tests.support.helm import find, render_chart
from tests.support.overlays import with_overlays

VALUES_FILES = paths.values_files()


@pytest.mark.parametrize("kube_version", paths.KUBE_VERSIONS)
def test_default_values_render_and_validate(kube_version: str) -> None:
    objects = render_chart(kube_version=kube_version, validate_versions=[kube_version])
    assert objects, "the chart rendered no object"
    print(f"rendered {len(objects)} objects (umbrella, ours only) for Kubernetes {kube_version}")


@pytest.mark.parametrize("values_file", VALUES_FILES, ids=lambda p: p.relative_to(paths.REPO).as_posix())
@pytest.mark.parametrize("kube_version", paths.KUBE_VERSIONS)
def test_values_file_renders_and_validates(values_file, kube_version: str) -> None:
    objects = render_chart(
        values_files=with_overlays(values_file), kube_version=kube_version, validate_versions=[kube_version]
    )
    assert objects


def test_platform_config_is_json_with_release_namespace() -> None:
    objects = render_chart(namespace="ml-team", show_only=["templates/platform/platform-configmap.yaml"])
    (cm,) = find(objects, "ConfigMap")
    cfg = json.loads(cm["data"]["platform.json"])
    assert cfg["namespace"] == "ml-team"
    assert cfg["schemaVersion"] == 1


def test_fullname_is_cut_at_63_characters() -> None:
    # 40 characters: the longest release name the official chart accepts (tests/chart/test_naming.py).
    objects = render_chart(release="r" * 40, values={"nameOverride": "n" * 30})
    for obj in objects:
        name = obj["metadata"]["name"]
        assert len(name) <= 63, f"{obj['kind']}/{name} is longer than 63 characters"
        assert not name.endswith("-")


def test_every_object_carries_the_standard_labels() -> None:
    for obj in render_chart(values={"commonLabels": {"team": "ml"}}):
        labels = obj["metadata"].get("labels") or {}
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "helm.sh/chart"):
            assert key in labels, f"{obj['__source__']}: {obj['kind']} lacks label {key}"
        assert labels.get("team") == "ml"
