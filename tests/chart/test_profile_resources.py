"""Every default profile carries CPU and memory requests and limits; the GPU profiles' scale
with their GPUs, so the most expensive task pods get a memory guarantee (and are not the first
evicted). Overridable per profile."""

from __future__ import annotations

import yaml

from tests.support import paths
from tests.support.helm import find, parse_documents, render_chart
from tests.support.k8s import parse_quantity


def templates(values: dict | None = None) -> dict[str, dict]:
    objects = render_chart(values=values)
    (cm,) = [o for o in find(objects, "ConfigMap") if o["metadata"]["name"].endswith("-pod-templates")]
    return {key.removesuffix(".yaml"): parse_documents(text)[0] for key, text in cm["data"].items()}


def test_every_default_profile_has_requests_and_limits() -> None:
    for name, pod in templates().items():
        resources = pod["spec"]["containers"][0]["resources"]
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[section]), f"{name}: {section} {resources}"


def test_gpu_profiles_scale_with_their_gpus() -> None:
    defaults = yaml.safe_load((paths.CHART_DIR / "values.yaml").read_text())["profiles"]
    pods = templates()
    per_gpu: dict[tuple[str, str], set] = {}
    for name, profile in defaults.items():
        gpus = profile["gpus"]
        if not gpus:
            continue
        resources = pods[name]["spec"]["containers"][0]["resources"]
        assert resources["limits"]["nvidia.com/gpu"] == str(gpus)
        for section in ("requests", "limits"):
            for key in ("cpu", "memory"):
                per_gpu.setdefault((section, key), set()).add(parse_quantity(resources[section][key]) / gpus)
    assert per_gpu and all(len(v) == 1 for v in per_gpu.values()), per_gpu


def test_a_profile_overrides_its_resources() -> None:
    pods = templates({"profiles": {"gpu-2": {"gpus": 2, "resources": {"requests": {"memory": "8Gi"}}}}})
    resources = pods["gpu-2"]["spec"]["containers"][0]["resources"]
    assert resources["requests"]["memory"] == "8Gi"
    assert resources["limits"]["nvidia.com/gpu"] == "2"
