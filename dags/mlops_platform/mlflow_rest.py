"""Minimal MLflow REST client (standard library only) for tasks that run inside Airflow.

MLflow itself stays out of the Airflow environment (README, "Versions"); the few calls the
DAGs need (search runs, resolve an alias, tag a run) are plain JSON over HTTP. Import this
module inside task functions, never at DAG parse time.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
import urllib.request
from typing import Any

TIMEOUT_SECONDS = 30


class MlflowRestError(RuntimeError):
    """The tracking server answered with an error or could not be reached."""


def auth_headers() -> dict[str, str]:
    """The credential MLflow's own client uses: MLFLOW_TRACKING_TOKEN (bearer) or
    MLFLOW_TRACKING_USERNAME/PASSWORD (basic; the chart puts them into every Airflow component
    from mlflow.auth.clientSecret through airflow.secret). None set: no header."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    return {}


def call(
    tracking_uri: str, method: str, endpoint: str, payload: dict[str, Any] | None = None
) -> dict[str, Any]:
    base = tracking_uri.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise MlflowRestError(f"tracking URI {tracking_uri!r} is not http(s)")
    url = f"{base}/api/2.0/mlflow/{endpoint}"
    data = None
    if method == "GET" and payload:
        url += "?" + urllib.parse.urlencode(payload)
    elif payload is not None:
        data = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **auth_headers()}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:  # noqa: S310 (http(s) checked)
            body = resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            who = "no credential" if not auth_headers() else "the credential of MLFLOW_TRACKING_USERNAME"
            raise MlflowRestError(
                f"{method} {endpoint}: HTTP {exc.code}: MLflow refused {who} (mlflow.auth: Airflow "
                "reads MLFLOW_TRACKING_USERNAME/PASSWORD from mlflow.auth.clientSecret via airflow.secret)"
            ) from exc
        raise MlflowRestError(f"{method} {endpoint}: HTTP {exc.code}: {exc.read()[:500]!r}") from exc
    except OSError as exc:
        raise MlflowRestError(f"{method} {endpoint}: {base} unreachable: {exc}") from exc
    return json.loads(body or b"{}")


def experiment_id(tracking_uri: str, name: str) -> str | None:
    try:
        found = call(tracking_uri, "GET", "experiments/get-by-name", {"experiment_name": name})
    except MlflowRestError as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc) or "HTTP 404" in str(exc):
            return None
        raise
    return found["experiment"]["experiment_id"]


def search_runs(tracking_uri: str, experiment: str, filter_string: str) -> list[dict[str, Any]]:
    exp = experiment_id(tracking_uri, experiment)
    if exp is None:
        return []
    found = call(
        tracking_uri,
        "POST",
        "runs/search",
        {"experiment_ids": [exp], "filter": filter_string, "max_results": 1000},
    )
    return found.get("runs", [])


def run_metrics(run: dict[str, Any]) -> dict[str, float]:
    return {m["key"]: float(m["value"]) for m in run.get("data", {}).get("metrics", [])}


def run_tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run.get("data", {}).get("tags", [])}


def set_run_tag(tracking_uri: str, run_id: str, key: str, value: str) -> None:
    call(tracking_uri, "POST", "runs/set-tag", {"run_id": run_id, "key": key, "value": value})


def model_version_by_alias(tracking_uri: str, name: str, alias: str) -> dict[str, Any]:
    found = call(tracking_uri, "GET", "registered-models/alias", {"name": name, "alias": alias})
    return found["model_version"]
