"""The NetworkPolicy semantics the chart's policies are checked with, on rendered objects: which
connection the policies allow (tests/chart/test_network_policies.py, on the rendered chart) and
which connections the real pods must see answered or refused (tests/cluster/
test_real_node_policies.py, with kube-router enforcing them on the real node).

Every pod the platform runs (the official chart's, ours, a task pod from each pod template, a
model server) plus the cluster DNS, the ingress controller, a pod of another namespace and an
address outside the cluster are endpoints; a connection is allowed when the source's egress
and the destination's ingress both allow it (a pod no policy selects for a direction is open
in that direction; rules are ORed; peers, ports and named ports as Kubernetes reads them).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from tests.support.helm import find, parse_documents, render_chart
from tests.support.k8s import pod_specs

RELEASE, NS, TASKS_NS = "mlops", "mlops", "mlops-jobs"


@dataclass
class Endpoint:
    name: str
    namespace: str | None  # None: outside the cluster
    labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)  # named container ports
    ip: str | None = None


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def namespace_labels(ns: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": ns}


def peer_matches(peer: dict[str, Any], policy_ns: str, ep: Endpoint) -> bool:
    if "ipBlock" in peer:
        if ep.ip is None:
            return False
        ip = ipaddress.ip_address(ep.ip)
        block = peer["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(e) for e in block.get("except") or []
        )
    if ep.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], namespace_labels(ep.namespace)):
            return False
    elif ep.namespace != policy_ns:
        return False
    return selects(peer.get("podSelector"), ep.labels)


def port_matches(ports: list[dict[str, Any]] | None, dst: Endpoint, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        want = p.get("port")
        if want is None:
            return True
        if isinstance(want, str):
            want = dst.ports.get(want)
            if want is None:
                continue
        if want <= port <= p.get("endPort", want):
            return True
    return False


def policy_types(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))


def direction_allows(
    policies: list[dict],
    pod: Endpoint,
    other: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: str,
    direction: str,
) -> bool:
    if pod.namespace is None:
        return True  # outside the cluster: no policy applies
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and selects(p["spec"].get("podSelector"), pod.labels)
        and direction in policy_types(p)
    ]
    if not selecting:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for p in selecting:
        for rule in p["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(peer_matches(x, p["metadata"]["namespace"], other) for x in peers)) and (
                port_matches(rule.get("ports"), dst, port, protocol)
            ):
                return True
    return False


def allowed(policies: list[dict], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
    return direction_allows(policies, src, dst, dst, port, protocol, "Egress") and direction_allows(
        policies, dst, src, dst, port, protocol, "Ingress"
    )


def endpoints(objects: list[dict]) -> dict[str, Endpoint]:
    out: dict[str, Endpoint] = {}
    for obj in objects:
        for _, spec in pod_specs(obj):
            tmpl = obj["spec"].get("template") or {}
            ports = {
                p["name"]: p["containerPort"]
                for c in spec["containers"]
                for p in c.get("ports") or []
                if "name" in p
            }
            ns = obj["metadata"].get("namespace") or NS
            out[obj["metadata"]["name"]] = Endpoint(
                obj["metadata"]["name"], ns, tmpl["metadata"]["labels"], ports
            )
    (cm,) = [o for o in find(objects, "ConfigMap") if o["metadata"]["name"].endswith("-pod-templates")]
    for key, text in cm["data"].items():
        pod = parse_documents(text)[0]
        labels = {**pod["metadata"]["labels"], "kubernetes_pod_operator": "True"}  # added by the operator
        out[f"task-{key.removesuffix('.yaml')}"] = Endpoint(key, TASKS_NS, labels)
    # The model server the ml_serving DAG rolls out (the chart's serving-deployment.yaml; the DAG
    # adds only the model label): run-time state, labelled without app.kubernetes.io/instance.
    for platform in [o for o in find(objects, "ConfigMap") if "serving-deployment.yaml" in (o.get("data") or {})]:
        dag_dep = parse_documents(platform["data"]["serving-deployment.yaml"])[0]
        tmpl = dag_dep["spec"]["template"]
        out["dag-model-server"] = Endpoint(
            "dag-model-server",
            dag_dep["metadata"]["namespace"],
            {**tmpl["metadata"]["labels"], "mlops.airflow.apache.org/model": "wine"},
            {p["name"]: p["containerPort"] for c in tmpl["spec"]["containers"] for p in c.get("ports") or []},
        )
    out["dns"] = Endpoint("dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})
    out["ingress-controller"] = Endpoint(
        "ingress", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}
    )
    out["intruder"] = Endpoint("intruder", "default", {"app": "intruder"})
    out["internet"] = Endpoint("internet", None, ip="203.0.113.7")
    out["same-namespace-stranger"] = Endpoint("stranger", NS, {"app": "stranger"})
    return out


VALUES = {
    "tasks": {"namespace": TASKS_NS},
    "devDatabase": {"enabled": True, "auth": {"existingSecret": "db"}},
    "mlflow": {"backendStore": {"type": "devDatabase"}},
    "serving": {
        "enabled": True,
        "domain": "models.example.com",
        "models": [{"name": "iris", "modelUri": "models:/iris@champion"}],
    },
    "airflow": {"postgresql": {"enabled": False}, "data": {"metadataSecretName": "airflow-metadata"}},
}



def world() -> tuple[list[dict], dict[str, Endpoint]]:
    """The chart's NetworkPolicies and the platform's endpoints, rendered with VALUES."""
    objects = render_chart(values=VALUES, release=RELEASE, namespace=NS, include_subchart=True)
    return find(objects, "NetworkPolicy"), endpoints(objects)


def ep(eps: dict[str, Endpoint], prefix: str) -> Endpoint:
    (match,) = [e for n, e in eps.items() if n == prefix or n.startswith(prefix)]
    return match


AIRFLOW = [
    "mlops-scheduler",
    "mlops-api-server",
    "mlops-dag-processor",
    "mlops-triggerer",
    "mlops-run-airflow-migrations",
]
TASKS = ["task-cpu", "task-gpu-1", "task-gpu-8"]
MLFLOW, DB, POOLS, SERVER = (
    "mlops-airflow-mlops-mlflow",
    "mlops-airflow-mlops-dev-database",
    "mlops-airflow-mlops-pools",
    "mlops-airflow-mlops-serving-iris",
)
