"""Pod templates: one valid, restricted Pod per profile, carrying the platform's settings."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support import paths
from tests.support.helm import find, parse_documents, render_chart
from tests.support.k8s import restricted_violations, validate_objects
from tests.support.overlays import with_overlays

CM = "templates/pod-templates/pod-templates-configmap.yaml"


def templates(values: dict[str, Any] | None = None, **kw: Any) -> dict[str, dict[str, Any]]:
    (cm,) = find(render_chart(values=values, show_only=[CM], **kw), "ConfigMap")
    assert cm["metadata"]["name"] == "airflow-mlops-pod-templates"
    out = {}
    for key, text in cm["data"].items():
        assert key.endswith(".yaml")
        out[key.removesuffix(".yaml")] = yaml.safe_load(text)
    return out


@pytest.mark.parametrize(
    "values_file", [None, *paths.values_files()], ids=lambda p: p.name if p else "defaults"
)
def test_each_template_is_a_valid_restricted_pod(values_file) -> None:
    files = with_overlays(values_file) if values_file else []
    (cm,) = find(render_chart(values_files=files, show_only=[CM]), "ConfigMap")
    assert cm["data"], "no pod template rendered"
    for key, text in cm["data"].items():
        (pod,) = parse_documents(f"# Source: {CM}#{key}\n{text}")
        validate_objects([pod], versions=paths.KUBE_VERSIONS)
        assert restricted_violations(pod["spec"], f"{key}") == []
        (base,) = pod["spec"]["containers"]
        assert base["name"] == "base"
        assert base["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in base["volumeMounts"]
        assert ":latest" not in base["image"]


def test_cpu_and_gpu_profiles() -> None:
    t = templates()
    assert set(t) == {"cpu", "gpu-1", "gpu-2", "gpu-4", "gpu-8"}
    cpu = t["cpu"]["spec"]
    assert "nodeSelector" not in cpu and "tolerations" not in cpu
    assert "nvidia.com/gpu" not in (cpu["containers"][0].get("resources") or {}).get("limits", {})
    for n in (1, 2, 4, 8):
        spec = t[f"gpu-{n}"]["spec"]
        base = spec["containers"][0]
        assert base["resources"]["limits"]["nvidia.com/gpu"] == str(n)
        assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        env = {e["name"]: e.get("value") for e in base["env"]}
        assert env["MLOPS_GPUS"] == str(n) and env["MLOPS_PROFILE"] == f"gpu-{n}"


def test_env_and_volumes() -> None:
    spec = templates()["cpu"]["spec"]
    base = spec["containers"][0]
    env = {e["name"]: e.get("value") for e in base["env"]}
    assert env["HOME"] == "/tmp"
    assert (
        env["MLFLOW_TRACKING_URI"] == "http://test-airflow-mlops-mlflow.airflow-mlops.svc.cluster.local:5000"
    )
    ws = next(m for m in base["volumeMounts"] if m["name"] == "workspace")
    assert ws == {"name": "workspace", "mountPath": "/workspace", "subPathExpr": "$(MLOPS_WORKSPACE_SUBPATH)"}
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["workspace"]["persistentVolumeClaim"]["claimName"] == "test-airflow-mlops-workspace"
    assert "datasets" not in vols
    assert "imagePullSecrets" not in spec
    assert spec["automountServiceAccountToken"] is False


def test_registry_nfs_placement_and_custom_profile() -> None:
    t = templates(
        {
            "registry": {"enabled": True, "server": "nexus", "existingSecret": "nexus-pull"},
            "airflow": {"imagePullSecrets": ["nexus-pull"]},
            "storage": {
                "nfs": {"enabled": True, "server": "nfs", "path": "/d"},
                "workspace": {"existingClaim": "ws"},
            },
            # Helm merges maps: the default label is removed with null
            "gpu": {
                "nodeSelector": {
                    "nvidia.com/gpu.present": None,
                    "node.kubernetes.io/instance-type": "p4d.24xlarge",
                }
            },
            "tasks": {"serviceAccountName": "runner"},
            "profiles": {
                "gpu-2": {
                    "gpus": 2,
                    "runtimeClassName": "nvidia",
                    "priorityClassName": "batch",
                    "nodeSelector": {"zone": "a"},
                    "resources": {"requests": {"cpu": "4"}},
                },
            },
        }
    )
    spec = t["gpu-2"]["spec"]
    assert spec["imagePullSecrets"] == [{"name": "nexus-pull"}]
    assert spec["serviceAccountName"] == "runner"
    assert spec["runtimeClassName"] == "nvidia" and spec["priorityClassName"] == "batch"
    assert spec["nodeSelector"] == {"node.kubernetes.io/instance-type": "p4d.24xlarge", "zone": "a"}
    base = spec["containers"][0]
    # Helm merges maps: the profile's cpu request overrides the default's, the rest stays, and
    # the GPU limit is added.
    assert base["resources"] == {
        "requests": {"cpu": "4", "memory": "32Gi"},
        "limits": {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": "2"},
    }
    data = next(m for m in base["volumeMounts"] if m["name"] == "datasets")
    assert data == {"name": "datasets", "mountPath": "/data", "readOnly": True}
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["datasets"]["persistentVolumeClaim"] == {
        "claimName": "test-airflow-mlops-datasets",
        "readOnly": True,
    }
    assert vols["workspace"]["persistentVolumeClaim"]["claimName"] == "ws"
    assert t["cpu"]["spec"]["imagePullSecrets"] == [{"name": "nexus-pull"}]


def test_profile_values_do_not_leak_between_profiles() -> None:
    """The GPU limit is added to a copy: the profile's own resources stay as given."""
    resources = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    t = templates({"profiles": {"gpu-1": {"gpus": 1, "resources": resources}}})
    assert t["gpu-1"]["spec"]["containers"][0]["resources"]["limits"] == {
        "cpu": "2",
        "memory": "1Gi",
        "nvidia.com/gpu": "1",
    }
    # no GPU limit on the CPU profile, whose own resources are untouched
    assert "nvidia.com/gpu" not in t["cpu"]["spec"]["containers"][0]["resources"].get("limits", {})
