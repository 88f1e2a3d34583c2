"""MLflow tracking server access: fail fast and clearly when it is unset or unreachable."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from .errors import TrackingError

# MLflow retries HTTP calls for minutes by default (7 retries, 120 s timeout). A pipeline
# pod should fail quickly with a readable message instead; the pod template or the task
# may still override these.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
HEALTH_TIMEOUT_S = float(os.environ.get("MLOPS_TRACKING_HEALTH_TIMEOUT", "5"))


def configure_http_defaults() -> None:
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        raise TrackingError(
            "MLFLOW_TRACKING_URI is not set (the pod templates set it from the chart's "
            "mlflow settings; locally export MLFLOW_TRACKING_URI=http://127.0.0.1:5000)"
        )
    return uri


def check_reachable(uri: str | None = None) -> str:
    """GET <uri>/health with a short timeout; raises TrackingError naming the URI."""
    import requests

    uri = uri or tracking_uri()
    scheme = urlparse(uri).scheme
    if scheme not in ("http", "https"):
        # sqlite:///, file:, databricks ...: nothing to probe over HTTP.
        return uri
    url = uri.rstrip("/") + "/health"
    try:
        resp = requests.get(url, timeout=HEALTH_TIMEOUT_S)
    except requests.RequestException as exc:
        raise TrackingError(
            f"MLflow tracking server {uri} is unreachable ({type(exc).__name__}: {exc}); "
            "check MLFLOW_TRACKING_URI and that the mlflow Service is up"
        ) from exc
    if resp.status_code != 200:
        raise TrackingError(
            f"MLflow tracking server {uri} answered {resp.status_code} on /health: {resp.text[:200]!r}"
        )
    check_credential(uri)
    return uri


def check_credential(uri: str) -> None:
    """/health needs no login; one cheap authenticated call tells a refused credential (HTTP
    401/403 with mlflow.auth) apart from a later failure deep inside an MLflow client call."""
    import requests

    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    auth = (user, password) if user and password else None
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search"
    try:
        resp = requests.get(url, params={"max_results": 1}, auth=auth, headers=headers, timeout=HEALTH_TIMEOUT_S)
    except requests.RequestException as exc:
        raise TrackingError(f"MLflow tracking server {uri} is unreachable ({type(exc).__name__}: {exc})") from exc
    if resp.status_code in (401, 403):
        given = "no credential" if not (auth or token) else f"the credential of user {user!r}"
        raise TrackingError(
            f"MLflow tracking server {uri} refused {given} (HTTP {resp.status_code}): set "
            "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (the pod templates set them from "
            "mlflow.auth.clientSecret)"
        )
