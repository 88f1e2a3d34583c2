"""platform.json: validates against files/platform.schema.json and reflects the values."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support import paths
from tests.support.helm import find, render_chart
from tests.support.overlays import with_overlays

SCHEMA = json.loads((paths.CHART_DIR / "files" / "platform.schema.json").read_text())
CM = "templates/platform/platform-configmap.yaml"


def platform(values: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    (cm,) = find(render_chart(values=values, show_only=[CM], **kw), "ConfigMap")
    cfg = json.loads(cm["data"]["platform.json"])
    jsonschema.Draft7Validator(SCHEMA).validate(cfg)
    # the schema travels with the file, for the DAG side
    assert json.loads(cm["data"]["platform.schema.json"]) == SCHEMA
    return cfg


def test_schema_is_valid_draft7() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("values_file", paths.values_files(), ids=lambda p: p.name)
def test_every_values_file_renders_a_valid_platform_json(values_file) -> None:
    (cm,) = find(render_chart(values_files=with_overlays(values_file), show_only=[CM]), "ConfigMap")
    cfg = json.loads(cm["data"]["platform.json"])
    jsonschema.Draft7Validator(SCHEMA).validate(cfg)
    values = yaml.safe_load(values_file.read_text()) or {}
    defaults = yaml.safe_load((paths.CHART_DIR / "values.yaml").read_text())
    assert cfg["defaultProfile"] in cfg["profiles"]
    expected_profiles = set(defaults["profiles"]) | set(values.get("profiles") or {})
    assert set(cfg["profiles"]) == expected_profiles


def test_defaults() -> None:
    cfg = platform()
    assert cfg["release"] == "test"
    assert cfg["namespace"] == "airflow-mlops"
    assert cfg["tasks"] == {"namespace": "airflow-mlops", "serviceAccountName": None}
    assert cfg["registry"] == {"enabled": False, "host": "", "pullSecret": None}
    assert cfg["images"]["trainer"] == "trainer:0.1.0"
    assert {n: p["gpus"] for n, p in cfg["profiles"].items()} == {
        "cpu": 0,
        "gpu-1": 1,
        "gpu-2": 2,
        "gpu-4": 4,
        "gpu-8": 8,
    }
    assert cfg["profiles"]["gpu-2"]["podTemplateFile"] == "/opt/airflow/pod-templates/gpu-2.yaml"
    assert cfg["defaultProfile"] == "cpu"
    assert cfg["gpuPool"] == {"name": "gpu", "slots": 8, "maxWaitSeconds": 3600}
    assert (
        cfg["mlflow"]["trackingUri"]
        == "http://test-airflow-mlops-mlflow.airflow-mlops.svc.cluster.local:5000"
    )
    assert cfg["workspace"] == {
        "enabled": True,
        "mountPath": "/workspace",
        "subPathEnv": "MLOPS_WORKSPACE_SUBPATH",
        "claimName": "test-airflow-mlops-workspace",
    }
    assert cfg["datasets"] == {"enabled": False, "mountPath": "/data", "readOnly": True}


def test_reflects_the_values() -> None:
    cfg = platform(
        {
            "images": {"prefix": "nexus.example.com:8443/mlops/", "trainer": {"tag": "1.2.3"}},
            "registry": {"enabled": True, "server": "nexus.example.com:8443", "existingSecret": "nexus-pull"},
            "airflow": {"imagePullSecrets": ["nexus-pull"]},
            "tasks": {"namespace": "jobs", "serviceAccountName": "runner"},
            "profiles": {"gpu-8": None, "a100-3": {"gpus": 3, "description": "three"}},
            "defaultProfile": "a100-3",
            "pools": {"gpuPool": "gpus", "gpuMaxWaitSeconds": 900, "items": [{"name": "gpus", "slots": 12}]},
            "storage": {
                "nfs": {"enabled": True, "server": "nfs", "path": "/x", "readOnly": False},
                "workspace": {"enabled": False},
            },
        },
        namespace="ml",
    )
    assert cfg["namespace"] == "ml"
    assert cfg["tasks"] == {"namespace": "jobs", "serviceAccountName": "runner"}
    assert cfg["registry"] == {"enabled": True, "host": "nexus.example.com:8443", "pullSecret": "nexus-pull"}
    assert cfg["images"]["prefix"] == "nexus.example.com:8443/mlops"
    assert cfg["images"]["trainer"] == "nexus.example.com:8443/mlops/trainer:1.2.3"
    assert "gpu-8" not in cfg["profiles"]
    assert cfg["profiles"]["a100-3"] == {
        "gpus": 3,
        "description": "three",
        "podTemplateFile": "/opt/airflow/pod-templates/a100-3.yaml",
    }
    assert cfg["defaultProfile"] == "a100-3"
    assert cfg["gpuPool"] == {"name": "gpus", "slots": 12, "maxWaitSeconds": 900}
    assert cfg["workspace"]["enabled"] is False and cfg["workspace"]["claimName"] is None
    assert cfg["datasets"] == {"enabled": True, "mountPath": "/data", "readOnly": False}


def test_schema_rejects_a_wrong_file() -> None:
    cfg = platform()
    cfg["profiles"]["cpu"]["gpus"] = -1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SCHEMA).validate(cfg)


@pytest.mark.skipif(
    "mlflow" not in json.loads((paths.CHART_DIR / "files" / "values.schema.json").read_text())["properties"],
    reason="the mlflow values (issue 4) have not landed yet",
)
def test_external_tracking_uri_when_mlflow_is_disabled() -> None:
    cfg = platform({"mlflow": {"enabled": False, "externalTrackingUri": "https://mlflow.example.com"}})
    assert cfg["mlflow"]["trackingUri"] == "https://mlflow.example.com"
