"""Model serving objects (Deployment + Service + Ingress) and their rollout through the API.

Pure builders (`serving_objects`) are used by the ml_serving DAG and by the tests. The
model-server Deployment is the chart's own (`serving-deployment.yaml` beside platform.json),
filled in with what varies per model. The rollout functions import the kubernetes client
inside, so nothing here touches the network at DAG parse time.

Rollout (idempotent): snapshot what is there -> create or patch each object -> wait until the
Deployment's new ReplicaSet is available -> smoke-test `/invocations` -> on failure restore the
snapshot (or delete what this rollout created).

Ownership: every object this module creates carries `OWNER_LABEL: OWNER` and the model label;
an existing object without both (the chart's Ingress, anything else in the namespace) is never
patched, replaced or deleted (`NotOwned`), and a model whose object names would fall in the
chart's name space (`<release>-...`) is refused before anything is read.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import PlatformConfig, PlatformConfigError

SERVING_PORT = 8080
SERVER_CONTAINER = "model-server"
MODEL_LABEL = "mlops.airflow.apache.org/model"
VERSION_ANNOTATION = "mlops.airflow.apache.org/model-version"
MODEL_URI_ANNOTATION = "mlops.airflow.apache.org/model-uri"
OWNER_LABEL = "mlops.airflow.apache.org/owner"
OWNER = "ml_serving"


class NotOwned(RuntimeError):
    """An object of the same name exists and was not created by ml_serving for this model."""


def check_model_name(cfg: PlatformConfig, model: str) -> str:
    """The model name as a DNS label (names.MODEL_NAME) whose objects cannot be the chart's."""
    from .names import MODEL_NAME

    MODEL_NAME.check(model, "model name")
    release = str(cfg.release)
    if model == release or serving_name(model).startswith(release + "-") or model.startswith(release + "-"):
        raise ValueError(
            f"model name {model!r}: its objects ({serving_name(model)}) would collide with the chart's own "
            f"objects (named {release}-...); choose another model name"
        )
    return model


def owned(obj: Any, model: str) -> bool:
    """True when the object (API dict) carries ml_serving's owner label and this model's label."""
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(OWNER_LABEL) == OWNER and labels.get(MODEL_LABEL) == model


def serving_name(model: str) -> str:
    """Kubernetes name of a model's server objects (model names are DNS labels, <= 40 chars)."""
    return f"{model}-serving"


def serving_host(cfg: PlatformConfig, model: str) -> str:
    domain = str(cfg.serving.get("domain") or "").strip(".")
    return f"{model}.{domain}" if domain else ""


def serving_namespace(cfg: PlatformConfig) -> str:
    return str(cfg.serving.get("namespace") or cfg.namespace)


def service_url(cfg: PlatformConfig, model: str) -> str:
    return f"http://{serving_name(model)}.{serving_namespace(cfg)}.svc.cluster.local:{SERVING_PORT}"


def deployment_template(cfg: PlatformConfig) -> dict[str, Any]:
    """The model-server Deployment the chart renders for this DAG (platform ConfigMap)."""
    import yaml

    ref = cfg.serving.get("deploymentTemplateFile")
    if not cfg.serving.get("enabled") or not ref:
        raise PlatformConfigError(
            f"{cfg.path}: model serving is disabled in the chart (set serving.enabled=true): "
            "no serving-deployment.yaml in the platform ConfigMap"
        )
    path = Path(cfg.directory) / Path(str(ref)).name
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlatformConfigError(f"{path} not found: the chart ships it beside {cfg.path}") from None


def serving_objects(cfg: PlatformConfig, model: str, version: str, replicas: int = 1) -> list[dict[str, Any]]:
    """Deployment, Service and (when a domain is configured) Ingress for one model version.

    The Deployment is the chart's (`deployment_template`: pod, probes, security, resources,
    placement); only what varies per model is filled in: name, model label, model URI,
    annotations, replicas.
    """
    check_model_name(cfg, model)
    name = serving_name(model)
    namespace = serving_namespace(cfg)
    model_uri = f"models:/{model}/{version}"
    dep = copy.deepcopy(deployment_template(cfg))
    spec, pod = dep["spec"], dep["spec"]["template"]
    annotations = {VERSION_ANNOTATION: str(version), MODEL_URI_ANNOTATION: model_uri}
    dep["metadata"].update(name=name, namespace=namespace)
    for meta in (dep["metadata"], pod["metadata"]):
        meta["labels"][MODEL_LABEL] = model
        meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    spec["selector"]["matchLabels"][MODEL_LABEL] = model
    dep["metadata"]["labels"] = {**dep["metadata"]["labels"], OWNER_LABEL: OWNER}
    spec["replicas"] = replicas
    (server,) = [c for c in pod["spec"]["containers"] if c["name"] == SERVER_CONTAINER]
    command = server["command"]
    command[command.index("-m") + 1] = model_uri
    labels, selector = dep["metadata"]["labels"], spec["selector"]["matchLabels"]
    objects: list[dict[str, Any]] = [
        dep,
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
        # The controller's authentication (serving.auth) and serving.ingress.annotations.
        if cfg.serving.get("ingressAnnotations"):
            ingress["metadata"]["annotations"] = dict(cfg.serving["ingressAnnotations"])
        if cfg.serving.get("ingressClassName"):
            ingress["spec"]["ingressClassName"] = cfg.serving["ingressClassName"]
        if cfg.serving.get("tls"):
            # the chart's TLS Secret of the model hosts (serving.tls.secretName: a wildcard
            # certificate covers every <model>.<domain>); per-model only without one
            secret = cfg.serving.get("tlsSecretName") or f"{name}-tls"
            ingress["spec"]["tls"] = [{"hosts": [host], "secretName": secret}]
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


def _with_apis(items: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], Any, str]]:
    """(item, its API client, method suffix such as `namespaced_deployment`) for objects or
    snapshot entries (both carry `kind`), with one set of clients."""
    apps, core, net = _clients()
    apis = {
        "Deployment": (apps, "namespaced_deployment"),
        "Service": (core, "namespaced_service"),
        "Ingress": (net, "namespaced_ingress"),
    }
    for item in items:
        api, suffix = apis[item["kind"]]
        yield item, api, suffix


def snapshot(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What exists now for each object (None when absent), as plain dicts for XCom."""
    from kubernetes.client import ApiClient
    from kubernetes.client.exceptions import ApiException

    out = []
    for obj, api, suffix in _with_apis(objects):
        meta = obj["metadata"]
        try:
            current = getattr(api, f"read_{suffix}")(meta["name"], meta["namespace"])
            current = ApiClient().sanitize_for_serialization(current)
        except ApiException as exc:
            if exc.status != 404:
                raise
            current = None
        _check_owned(obj["kind"], meta, current)
        out.append(
            {"kind": obj["kind"], "name": meta["name"], "namespace": meta["namespace"], "object": current}
        )
    return out


def apply(objects: list[dict[str, Any]]) -> list[str]:
    """Create each object, or patch it when it exists and is ml_serving's (idempotent)."""
    from kubernetes.client import ApiClient
    from kubernetes.client.exceptions import ApiException

    done = []
    for obj, api, suffix in _with_apis(objects):
        meta = obj["metadata"]
        try:
            getattr(api, f"create_{suffix}")(meta["namespace"], obj)
            done.append(f"created {obj['kind']}/{meta['name']}")
        except ApiException as exc:
            if exc.status != 409:
                raise
            current = ApiClient().sanitize_for_serialization(
                getattr(api, f"read_{suffix}")(meta["name"], meta["namespace"])
            )
            _check_owned(obj["kind"], meta, current)
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
    """Put every object back as it was in the snapshot; delete the ones that did not exist (only
    ml_serving's own objects are ever touched)."""
    from kubernetes.client import ApiClient
    from kubernetes.client.exceptions import ApiException

    done = []
    for item, api, suffix in _with_apis(snap):
        name, ns, previous = item["name"], item["namespace"], item["object"]
        model = _model_of(item, previous)
        try:
            current = ApiClient().sanitize_for_serialization(getattr(api, f"read_{suffix}")(name, ns))
        except ApiException as exc:
            if exc.status != 404:
                raise
            current = None
        if current is not None and not owned(current, model):
            raise NotOwned(f"{item['kind']} {ns}/{name} is not ml_serving's (label {OWNER_LABEL}={OWNER} missing): left alone")
        if previous is None:
            if current is None:
                continue
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
        if not owned(previous, model):
            raise NotOwned(f"{item['kind']} {ns}/{name}: the snapshot is not of an ml_serving object: left alone")
        # Replace restores the previous spec exactly; a Service is patched (its clusterIP stays).
        verb = "patch" if item["kind"] == "Service" else "replace"
        getattr(api, f"{verb}_{suffix}")(name, ns, body)
        done.append(f"restored {item['kind']}/{name}")
    return done


def _model_of(item: dict[str, Any], previous: Any) -> str:
    """The model a snapshot entry belongs to (its object name is `<model>-serving`)."""
    name = str(item["name"])
    return name[: -len("-serving")] if name.endswith("-serving") else name


def _check_owned(kind: str, meta: dict[str, Any], current: Any) -> None:
    if current is None:
        return
    model = str((meta.get("labels") or {}).get(MODEL_LABEL, ""))
    if not owned(current, model):
        raise NotOwned(
            f"{kind} {meta['namespace']}/{meta['name']} exists and was not created by ml_serving for model "
            f"{model!r} (label {OWNER_LABEL}={OWNER} and {MODEL_LABEL}={model} missing): refusing to patch, "
            "replace or delete it"
        )
