"""Whole chart: every container and init container we render, including every pod template
inside the pod-templates ConfigMap, follows the restricted Pod Security Standard."""

from __future__ import annotations

import pytest
import yaml

from tests.support import paths
from tests.support.helm import parse_documents, render_chart
from tests.support.k8s import containers, pod_specs, restricted_violations, validate_objects
from tests.support.overlays import with_overlays

FILES = [None, *paths.values_files()]


def every_pod_spec(objects: list[dict]) -> list[tuple[str, dict]]:
    out = []
    for obj in objects:
        where = f"{obj['__source__']}: {obj['kind']}/{obj['metadata']['name']}"
        for path, spec in pod_specs(obj):
            out.append((f"{where} {path}", spec))
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-pod-templates"):
            for key, text in obj["data"].items():
                (pod,) = parse_documents(f"# Source: {obj['__source__']}#{key}\n{text}")
                validate_objects([pod], versions=paths.KUBE_VERSIONS)
                out.append((f"{where} data[{key}]", pod["spec"]))
    return out


@pytest.mark.parametrize("values_file", FILES, ids=lambda p: p.name if p else "defaults")
def test_every_container_is_restricted(values_file) -> None:
    objects = render_chart(values_files=with_overlays(values_file) if values_file else [])
    specs = every_pod_spec(objects)
    assert specs, "no pod spec found"
    problems = []
    count = 0
    for where, spec in specs:
        problems += restricted_violations(spec, where)
        for field, c in containers(spec):
            count += 1
            image = c.get("image", "")
            if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
                problems.append(f"{where} {field}[{c['name']}]: image {image!r} has no pinned tag")
    assert not problems, "\n".join(problems)
    print(f"{values_file.name if values_file else 'defaults'}: {count} containers in {len(specs)} pod specs")


def test_all_features_enumerates_every_kind_of_pod() -> None:
    objects = render_chart(values_files=[paths.CI_VALUES_DIR / "05-all-features-values.yaml"])
    wheres = [w for w, _ in every_pod_spec(objects)]
    assert any("StatefulSet/" in w for w in wheres)
    assert any("Job/" in w for w in wheres)
    assert sum("data[" in w for w in wheres) == 5


def test_the_check_can_fail() -> None:
    """A pod template made unsafe is caught by the check (the values schema refuses it earlier
    at render, tests/chart/test_bad_values.py; here the rendered template is altered)."""
    objects = render_chart()
    (cm,) = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-pod-templates")
    ]
    key = next(iter(cm["data"]))
    pod = yaml.safe_load(cm["data"][key])
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    problems = restricted_violations(pod["spec"], key)
    assert any("allowPrivilegeEscalation" in p for p in problems)
