"""Model serving objects (Deployment + Service + Ingress) and their rollout through the API.

Pure builders (`serving_objects`) are used by the ml_serving DAG and by the tests, which
validate them like the chart's objects. The rollout functions import the kubernetes client
inside, so nothing here touches the network at DAG parse time.

Rollout (idempotent): snapshot what is there -> create or patch each object -> wait until the
Deployment's new ReplicaSet is available -> smoke-test `/invocations` -> on failure restore the
snapshot (or delete what this rollout created).
"""

from __future__ import annotations

import copy
import time
from typing import Any

from .config import PlatformConfig

SERVING_PORT = 8080
COMPONENT = "model-serving"
VERSION_ANNOTATION = "mlops.airflow.apache.org/model-version"
MODEL_URI_ANNOTATION = "mlops.airflow.apache.org/model-uri"


def serving_name(model: str) -> str:
    """Kubernetes name of a model's server objects (model names are DNS labels, <= 40 chars)."""
    return f"{model}-serving"


def serving_labels(cfg: PlatformConfig, model: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "mlflow-model-server",
        "app.kubernetes.io/instance": cfg.release,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/part-of": "airflow-mlops",
        "app.kubernetes.io/managed-by": "airflow",
        "mlops.airflow.apache.org/model": model,
    }


def serving_host(cfg: PlatformConfig, model: str) -> str:
    domain = str(cfg.serving.get("domain") or "").strip(".")
    return f"{model}.{domain}" if domain else ""


def serving_namespace(cfg: PlatformConfig) -> str:
    return str(cfg.serving.get("namespace") or cfg.namespace)


def service_url(cfg: PlatformConfig, model: str) -> str:
    return f"http://{serving_name(model)}.{serving_namespace(cfg)}.svc.cluster.local:{SERVING_PORT}"


def serving_objects(
    cfg: PlatformConfig,
    model: str,
    version: str,
    replicas: int = 1,
    cpu: str = "250m",
    memory: str = "1Gi",
) -> list[dict[str, Any]]:
    """Deployment, Service and (when a domain is configured) Ingress for one model version."""
    name = serving_name(model)
    namespace = serving_namespace(cfg)
    labels = serving_labels(cfg, model)
    # managed-by=airflow keeps the selector disjoint from the chart-managed servers of
    # serving.models (same name/model labels, managed-by Helm, other object names).
    selector = {
        k: labels[k]
        for k in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "mlops.airflow.apache.org/model",
            "app.kubernetes.io/managed-by",
        )
    }
    model_uri = f"models:/{model}/{version}"
    image = str(cfg.serving.get("image") or cfg.mlflow_image)
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            # the mlflow image's user (images/mlflow: uid/gid 10001), as the chart's serving pods
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "server",
                "image": image,
                "command": ["mlflow"],
                "args": [
                    "models",
                    "serve",
                    "--model-uri",
                    model_uri,
                    "--host",
                    "0.0.0.0",  # noqa: S104 (a server inside its pod)
                    "--port",
                    str(SERVING_PORT),
                    "--env-manager",
                    "local",
                ],
                "env": [
                    {"name": "MLFLOW_TRACKING_URI", "value": cfg.tracking_uri},
                    {"name": "HOME", "value": "/tmp"},
                ],
                "ports": [{"name": "http", "containerPort": SERVING_PORT, "protocol": "TCP"}],
                "readinessProbe": {
                    "httpGet": {"path": "/ping", "port": "http"},
                    "periodSeconds": 5,
                    "failureThreshold": 3,
                },
                "livenessProbe": {
                    "httpGet": {"path": "/health", "port": "http"},
                    "initialDelaySeconds": 60,
                    "periodSeconds": 20,
                },
                "startupProbe": {
                    "httpGet": {"path": "/ping", "port": "http"},
                    "periodSeconds": 5,
                    "failureThreshold": 60,
                },
                "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}],
    }
    if cfg.pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": cfg.pull_secret}]
    annotations = {VERSION_ANNOTATION: str(version), MODEL_URI_ANNOTATION: model_uri}
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
            "spec": {
                "replicas": replicas,
                "revisionHistoryLimit": 5,
                "selector": {"matchLabels": selector},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "http", "port": SERVING_PORT, "targetPort": "http", "protocol": "TCP"}],
            },
        },
    ]
    host = serving_host(cfg, model)
    if host:
        ingress: dict[str, Any] = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "rules": [
                    {
                        "host": host,
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": name, "port": {"name": "http"}}},
                                }
                            ]
                        },
                    }
                ]
            },
        }
        if cfg.serving.get("ingressClassName"):
            ingress["spec"]["ingressClassName"] = cfg.serving["ingressClassName"]
        if cfg.serving.get("tls"):
            ingress["spec"]["tls"] = [{"hosts": [host], "secretName": f"{name}-tls"}]
        objects.append(ingress)
    return objects


# --- rollout through the Kubernetes API (runs inside tasks) -------------------------------


def _clients() -> tuple[Any, Any, Any]:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.AppsV1Api(), client.CoreV1Api(), client.NetworkingV1Api()


def _api_for(kind: str, apps: Any, core: Any, net: Any) -> tuple[Any, str]:
    return {
        "Deployment": (apps, "namespaced_deployment"),
        "Service": (core, "namespaced_service"),
        "Ingress": (net, "namespaced_ingress"),
    }[kind]


def snapshot(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What exists now for each object (None when absent), as plain dicts for XCom."""
    from kubernetes.client import ApiClient
    from kubernetes.client.exceptions import ApiException

    apps, core, net = _clients()
    out = []
    for obj in objects:
        api, suffix = _api_for(obj["kind"], apps, core, net)
        meta = obj["metadata"]
        try:
            current = getattr(api, f"read_{suffix}")(meta["name"], meta["namespace"])
            current = ApiClient().sanitize_for_serialization(current)
        except ApiException as exc:
            if exc.status != 404:
                raise
            current = None
        out.append(
            {"kind": obj["kind"], "name": meta["name"], "namespace": meta["namespace"], "object": current}
        )
    return out


def apply(objects: list[dict[str, Any]]) -> list[str]:
    """Create each object, or patch it when it exists (idempotent)."""
    from kubernetes.client.exceptions import ApiException

    apps, core, net = _clients()
    done = []
    for obj in objects:
        api, suffix = _api_for(obj["kind"], apps, core, net)
        meta = obj["metadata"]
        try:
            getattr(api, f"create_{suffix}")(meta["namespace"], obj)
            done.append(f"created {obj['kind']}/{meta['name']}")
        except ApiException as exc:
            if exc.status != 409:
                raise
            getattr(api, f"patch_{suffix}")(meta["name"], meta["namespace"], obj)
            done.append(f"patched {obj['kind']}/{meta['name']}")
    return done


def wait_ready(
    namespace: str, name: str, timeout_seconds: int = 600, poll_seconds: float = 5
) -> dict[str, Any]:
    """Wait until the Deployment's current generation is fully rolled out and available."""
    apps, _, _ = _clients()
    deadline = time.monotonic() + timeout_seconds
    last = ""
    while time.monotonic() < deadline:
        dep = apps.read_namespaced_deployment(name, namespace)
        st = dep.status
        want = dep.spec.replicas or 0
        observed = (st.observed_generation or 0) >= (dep.metadata.generation or 0)
        updated, available = st.updated_replicas or 0, st.available_replicas or 0
        last = f"generation {dep.metadata.generation} observed={observed} updated={updated} available={available}/{want}"
        if observed and updated >= want and available >= want and (st.unavailable_replicas or 0) == 0:
            return {"ready": True, "status": last}
        for cond in st.conditions or []:
            if cond.type == "Progressing" and cond.reason == "ProgressDeadlineExceeded":
                raise RuntimeError(f"Deployment {namespace}/{name}: {cond.message}")
        time.sleep(poll_seconds)
    raise TimeoutError(f"Deployment {namespace}/{name} not ready after {timeout_seconds}s: {last}")


def smoke_test(url: str, payload: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    """POST the payload to `<url>/invocations`; the answer must be JSON with predictions."""
    import json
    import urllib.request

    req = urllib.request.Request(
        url.rstrip("/") + "/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (in-cluster http URL)
        body = json.loads(resp.read())
    predictions = body.get("predictions") if isinstance(body, dict) else body
    if not isinstance(predictions, list) or not predictions:
        raise RuntimeError(f"smoke test: no predictions in the answer: {str(body)[:300]}")
    return {"predictions": predictions[:10]}


def restore(snap: list[dict[str, Any]]) -> list[str]:
    """Put every object back as it was in the snapshot; delete the ones that did not exist."""
    from kubernetes.client.exceptions import ApiException

    apps, core, net = _clients()
    done = []
    for item in snap:
        api, suffix = _api_for(item["kind"], apps, core, net)
        name, ns, previous = item["name"], item["namespace"], item["object"]
        if previous is None:
            try:
                getattr(api, f"delete_{suffix}")(name, ns)
                done.append(f"deleted {item['kind']}/{name}")
            except ApiException as exc:
                if exc.status != 404:
                    raise
            continue
        body = copy.deepcopy(previous)
        body.pop("status", None)
        meta = body.get("metadata", {})
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
            meta.pop(key, None)
        # Replace restores the previous spec exactly; a Service is patched (its clusterIP stays).
        verb = "patch" if item["kind"] == "Service" else "replace"
        getattr(api, f"{verb}_{suffix}")(name, ns, body)
        done.append(f"restored {item['kind']}/{name}")
    return done
