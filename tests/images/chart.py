"""Render one template of our chart with the pinned helm, from .venv-mlflow.

Uses tests/support/helm.py without its validation (.venv-mlflow has no kubernetes-validate):
the objects are only parsed here; the chart tests validate them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.helm import helm_template, parse_documents, strip_source

REL, NS = "mlops", "mlops"
# MLflow on a local sqlite file, acknowledged as development only (the chart refuses it otherwise).
LOCAL_SQLITE_VALUES = Path(__file__).with_name("mlflow-local-sqlite-values.yaml")


def render_template(template: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of one template, rendered for release `mlops` in namespace `mlops`, MLflow on
    a local sqlite file (LOCAL_SQLITE_VALUES, then `values`)."""
    text = helm_template(values=values, values_files=[LOCAL_SQLITE_VALUES], show_only=[template],
                         release=REL, namespace=NS)
    return [strip_source(obj) for obj in parse_documents(text)]


def model_server_container(model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod spec, container) of the chart's serving Deployment for one statically configured model
    `models:/<model>@champion`: the command the model-server tests run."""
    values = {
        "serving": {
            "enabled": True,
            "domain": "models.example.com",
            "models": [{"name": model, "modelUri": f"models:/{model}@champion"}],
        }
    }
    (dep,) = render_template("templates/serving/serving-deployment.yaml", values)
    spec = dep["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    return spec, container


def local_command(command: list[str], host_flag: str, port_flag: str, port: int) -> list[str]:
    """The rendered command with the binary from .venv-mlflow, bound to 127.0.0.1:<port>."""
    from tests.images import procs

    cmd = list(command)
    cmd[0] = str(procs.BIN / cmd[0])
    cmd[cmd.index(host_flag) + 1] = "127.0.0.1"
    cmd[cmd.index(port_flag) + 1] = str(port)
    return cmd
