"""The chart's `basecommand` values: basecommand.json for the DAGs, the connection from a Secret.

basecommand.json is rendered into the platform ConfigMap beside platform.json (typed by
files/basecommand.schema.json, shipped beside it) and read by dags/mlops_platform/basecommand/settings.py;
the NGC API key never appears in values or in the render: Airflow reads the connection from the
env var AIRFLOW_CONN_<CONNID>, which the official chart's `airflow.secret` maps from the Secret.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support import paths
from tests.support.helm import HelmError, find, render_chart
from tests.support.merge import deep_merge as merged

SCHEMA_FILE = paths.CHART_DIR / "files" / "basecommand.schema.json"
SCHEMA = json.loads(SCHEMA_FILE.read_text())
CM = "templates/platform/platform-configmap.yaml"
SECRET = "ngc-basecommand"
ENV = "AIRFLOW_CONN_NGC_BASECOMMAND"
# airflow.secret is a list: our entry goes next to the chart's own (a values file replaces the list).
CHART_SECRETS = (yaml.safe_load((paths.CHART_DIR / "values.yaml").read_text())["airflow"].get("secret") or [])
ENABLED: dict[str, Any] = {
    "basecommand": {
        "enabled": True,
        "org": "nv-ml",
        "team": "vision",
        "ace": "nv-us-west-2",
        "image": "nvidia/pytorch:25.01-py3",
        "connectionSecret": {"name": SECRET},
    },
    "airflow": {"secret": [*CHART_SECRETS, {"envName": ENV, "secretName": SECRET, "secretKey": "connection"}]},
}
# The Airflow components that parse DAGs or run tasks/triggers (they read the connection).
COMPONENTS = ("scheduler", "triggerer", "dag-processor", "api-server")


def platform_cm(values: dict[str, Any] | None) -> dict[str, str]:
    (cm,) = find(render_chart(values=values, show_only=[CM]), "ConfigMap")
    return cm["data"]


def bc_module():
    if str(paths.DAGS_DIR) not in sys.path:
        sys.path.append(str(paths.DAGS_DIR))
    from mlops_platform.basecommand import settings

    return settings


def test_schema_is_valid_draft7() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_disabled_by_default_no_basecommand_json() -> None:
    data = platform_cm(None)
    assert "basecommand.json" not in data and "basecommand.schema.json" not in data
    # missing file = the backend is off, the DAGs offer only kubernetes
    settings = bc_module().load_basecommand("/nonexistent")
    assert settings.backends == ["kubernetes"]


def test_rendered_basecommand_json_is_typed_and_the_loader_accepts_it(tmp_path: Path) -> None:
    data = platform_cm(ENABLED)
    doc = json.loads(data["basecommand.json"])
    jsonschema.Draft7Validator(SCHEMA).validate(doc)
    assert json.loads(data["basecommand.schema.json"]) == SCHEMA
    assert doc["instanceTypes"] == {
        "gpu-1": "dgxa100.80g.1.norm",
        "gpu-2": "dgxa100.80g.2.norm",
        "gpu-4": "dgxa100.80g.4.norm",
        "gpu-8": "dgxa100.80g.8.norm",
    }
    platform = json.loads(data["platform.json"])
    assert set(doc["instanceTypes"]) <= set(platform["profiles"])
    # as the DAGs see the ConfigMap mounted: both files in one directory
    for name in ("basecommand.json", "basecommand.schema.json"):
        (tmp_path / name).write_text(data[name])
    settings = bc_module().load_basecommand(str(tmp_path))
    assert settings.enabled and settings.backends == ["kubernetes", "basecommand"]
    assert (settings.org, settings.team, settings.ace) == ("nv-ml", "vision", "nv-us-west-2")
    assert settings.conn_id == "ngc_basecommand" and settings.default_backend == "kubernetes"
    assert settings.image == "nvidia/pytorch:25.01-py3"
    assert settings.time_limit_seconds == 3600 and settings.poll_seconds == 30


def test_the_loader_refuses_a_document_its_schema_refuses(tmp_path: Path) -> None:
    data = platform_cm(ENABLED)
    doc = json.loads(data["basecommand.json"])
    doc["instanceTypes"]["gpu-1"] = "Not An Instance"
    (tmp_path / "basecommand.json").write_text(json.dumps(doc))
    (tmp_path / "basecommand.schema.json").write_text(data["basecommand.schema.json"])
    bc = bc_module()
    with pytest.raises(bc.BaseCommandConfigError, match=r"instanceTypes\.gpu-1"):
        bc.load_basecommand(str(tmp_path))


def test_no_key_material_in_the_render_the_env_var_comes_from_the_secret() -> None:
    objects = render_chart(values=ENABLED, include_subchart=True)
    # the chart renders no Secret of the connection: it is made outside the chart
    assert not [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == SECRET]
    text = json.dumps(objects)
    assert '"password"' not in json.loads(platform_cm(ENABLED)["basecommand.json"])
    assert "conn_type" not in text
    seen = set()
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec") or {}
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            for env in container.get("env") or []:
                if env["name"] == ENV:
                    assert "value" not in env, (obj["metadata"]["name"], env)
                    assert env["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": "connection"}
                    seen.add(obj["metadata"]["name"])
    for component in COMPONENTS:
        assert any(name.endswith(component) for name in seen), (component, sorted(seen))


def test_airflow_reads_the_connection_from_the_env_var_form(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Real Airflow (BaseHook.get_connection, the env-var secrets backend) with the Secret's value
    exactly as the docs make it: the key alone; org/team come from basecommand.json."""
    data = platform_cm(ENABLED)
    for name in ("basecommand.json", "basecommand.schema.json"):
        (tmp_path / name).write_text(data[name])
    bc = bc_module()
    from mlops_platform.basecommand.client import NgcCredentials

    settings = bc.load_basecommand(str(tmp_path))
    objects = render_chart(values=ENABLED, include_subchart=True)
    (scheduler,) = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"].endswith("scheduler")]
    names = {e["name"] for c in scheduler["spec"]["template"]["spec"]["containers"] for e in c.get("env") or []}
    env_name = "AIRFLOW_CONN_" + settings.conn_id.upper()
    assert env_name in names
    monkeypatch.setenv(env_name, json.dumps({"conn_type": "ngc", "password": "nvapi-stand-in-key"}))
    creds = NgcCredentials.from_conn_id(settings.conn_id, {"org": settings.org, "team": settings.team})
    assert (creds.api_key, creds.org, creds.team) == ("nvapi-stand-in-key", "nv-ml", "vision")
    assert "nvapi-stand-in-key" not in repr(creds)
    # the connection's own extra wins over the chart's defaults
    monkeypatch.setenv(
        env_name, json.dumps({"conn_type": "ngc", "password": "k2", "extra": {"org": "other-org", "ace": "ace-2"}})
    )
    creds = NgcCredentials.from_conn_id(settings.conn_id, {"org": settings.org, "team": settings.team})
    assert (creds.org, creds.team, creds.ace) == ("other-org", "vision", "ace-2")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"basecommand": {"org": ""}}, "basecommand.org is required"),
        ({"basecommand": {"ace": ""}}, "basecommand.ace is required"),
        ({"basecommand": {"connectionSecret": {"name": ""}}}, "basecommand.connectionSecret.name is required"),
        ({"basecommand": {"instanceTypes": {"gpu-16": "dgxh100.80g.16.norm"}}}, "basecommand.instanceTypes.gpu-16"),
        ({"airflow": {"secret": CHART_SECRETS}}, "airflow.secret must map the connection Secret to the env var " + ENV),
        (
            {"basecommand": {"connId": "ngc_prod"}},
            "AIRFLOW_CONN_NGC_PROD, secretName: ngc-basecommand, secretKey: connection",
        ),
    ],
    ids=["no-org", "no-ace", "no-secret", "unknown-profile", "no-airflow-secret", "other-conn-id"],
)
def test_bad_values_name_the_key(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(HelmError) as err:
        render_chart(values=merged(ENABLED, change), show_only=[CM])
    assert expected in str(err.value)


def test_basecommand_default_backend_needs_enabled() -> None:
    with pytest.raises(HelmError, match="basecommand.defaultBackend=basecommand needs basecommand.enabled=true"):
        render_chart(values={"basecommand": {"defaultBackend": "basecommand"}}, show_only=[CM])
