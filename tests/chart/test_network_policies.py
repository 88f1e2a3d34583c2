"""Network isolation, evaluated with the NetworkPolicy semantics on the rendered objects.

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

import pytest

from tests.support import paths
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


@pytest.fixture(scope="module")
def world() -> tuple[list[dict], dict[str, Endpoint]]:
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

NEEDED = [
    *[(t, "dns", 53, "UDP") for t in TASKS],
    *[(t, MLFLOW, 5000, "TCP") for t in TASKS],
    *[(a, DB, 5432, "TCP") for a in AIRFLOW],
    (POOLS, DB, 5432, "TCP"),
    (POOLS, "dns", 53, "UDP"),
    (MLFLOW, DB, 5432, "TCP"),
    (SERVER, MLFLOW, 5000, "TCP"),
    (SERVER, "dns", 53, "UDP"),
    ("ingress-controller", SERVER, 8080, "TCP"),
    ("mlops-scheduler", SERVER, 8080, "TCP"),  # the ml_serving DAG's smoke test
    ("mlops-scheduler", MLFLOW, 5000, "TCP"),
    ("dag-model-server", MLFLOW, 5000, "TCP"),
    ("dag-model-server", "dns", 53, "UDP"),
    ("ingress-controller", "dag-model-server", 8080, "TCP"),
    ("mlops-scheduler", "dag-model-server", 8080, "TCP"),
]

DENIED = [
    *[(t, DB, 5432, "TCP") for t in TASKS],
    *[(t, "internet", 443, "TCP") for t in TASKS],
    *[(t, SERVER, 8080, "TCP") for t in TASKS],
    *[(t, "mlops-api-server", 8080, "TCP") for t in TASKS],
    *[("intruder", t, 8080, "TCP") for t in TASKS],
    ("task-cpu", "task-gpu-1", 8080, "TCP"),
    ("task-cpu", MLFLOW, 22, "TCP"),
    ("intruder", DB, 5432, "TCP"),
    ("same-namespace-stranger", DB, 5432, "TCP"),
    (SERVER, DB, 5432, "TCP"),
    ("intruder", SERVER, 8080, "TCP"),
    ("ingress-controller", SERVER, 9090, "TCP"),
    (SERVER, "internet", 443, "TCP"),
    (SERVER, "mlops-api-server", 8080, "TCP"),
    (POOLS, MLFLOW, 5000, "TCP"),
    (POOLS, "internet", 443, "TCP"),
    ("intruder", POOLS, 8080, "TCP"),
    (DB, "internet", 443, "TCP"),
    (DB, "dns", 53, "UDP"),
    ("intruder", MLFLOW, 5000, "TCP"),
    ("intruder", "dag-model-server", 8080, "TCP"),
    ("dag-model-server", "internet", 443, "TCP"),
    ("dag-model-server", DB, 5432, "TCP"),
]


@pytest.mark.parametrize("src,dst,port,protocol", NEEDED, ids=lambda x: str(x))
def test_every_needed_flow_is_allowed(world, src, dst, port, protocol) -> None:
    policies, eps = world
    assert allowed(policies, ep(eps, src), ep(eps, dst), port, protocol)


@pytest.mark.parametrize("src,dst,port,protocol", DENIED, ids=lambda x: str(x))
def test_everything_else_is_denied(world, src, dst, port, protocol) -> None:
    policies, eps = world
    assert not allowed(policies, ep(eps, src), ep(eps, dst), port, protocol)


def test_isolated_pods_are_default_deny(world) -> None:
    """Task pods, model servers, the pools Job and the dev database: both directions isolated."""
    policies, eps = world
    for name in [*TASKS, SERVER, POOLS, DB]:
        e = ep(eps, name)
        types = {
            t
            for p in policies
            if p["metadata"]["namespace"] == e.namespace and selects(p["spec"]["podSelector"], e.labels)
            for t in policy_types(p)
        }
        assert types == {"Ingress", "Egress"}, (name, types)


def test_extra_egress_and_external_database() -> None:
    values = {
        "tasks": {"namespace": TASKS_NS},
        "networkPolicies": {
            "tasksExtraEgress": [{"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": 443}]}],
            "database": {"to": [{"ipBlock": {"cidr": "10.10.0.0/16"}}]},
        }
    }
    objects = render_chart(values=values, release=RELEASE, namespace=NS)
    policies, eps = find(objects, "NetworkPolicy"), endpoints(objects)
    task, pools = ep(eps, "task-cpu"), ep(eps, "mlops-airflow-mlops-pools")
    assert allowed(policies, task, eps["internet"], 443)
    assert not allowed(policies, task, eps["internet"], 80)
    db = Endpoint("db", None, ip="10.10.1.2")
    assert allowed(policies, pools, db, 5432)
    assert not allowed(policies, pools, eps["internet"], 5432)


def test_off_by_value() -> None:
    objects = render_chart(values={"networkPolicies": {"enabled": False}}, release=RELEASE, namespace=NS)
    assert [p["metadata"]["name"] for p in find(objects, "NetworkPolicy")] == ["mlops-airflow-mlops-mlflow"]


def test_one_policy_per_file(world) -> None:
    policies, _ = world
    sources = [p["__source__"] for p in policies]
    assert len(sources) == len(set(sources))
    for s in sources:
        assert s.startswith(f"{paths.CHART_DIR.name}/templates/") and s.endswith("-networkpolicy.yaml"), s


def test_run_time_objects_are_selected_by_the_release_label_not_the_helm_instance_label(world) -> None:
    """Task pods and the DAG's model servers are run-time state (values/README.md, "Objects created
    at run time"): no `app.kubernetes.io/instance` (Argo CD's label tracking would count them as the
    Application's), and every policy that selects them or admits them does so by
    `mlops.airflow.apache.org/release`."""
    policies, eps = world
    run_time = [e for n, e in eps.items() if n.startswith("task-") or n == "dag-model-server"]
    assert len(run_time) >= 4
    for e in run_time:
        assert "app.kubernetes.io/instance" not in e.labels, e.name
        assert e.labels["mlops.airflow.apache.org/release"] == RELEASE, e.name
        assert e.labels["app.kubernetes.io/managed-by"] == "airflow", e.name
    selecting = 0
    for p in policies:
        peers = [p["spec"].get("podSelector") or {}]
        for rule in p["spec"].get("ingress") or []:
            peers += [f.get("podSelector") or {} for f in rule.get("from") or []]
        for rule in p["spec"].get("egress") or []:
            peers += [t.get("podSelector") or {} for t in rule.get("to") or []]
        for sel in peers:
            labels = sel.get("matchLabels") or {}
            if labels.get("app.kubernetes.io/component") in ("task", "model-serving"):
                selecting += 1
                assert "app.kubernetes.io/instance" not in labels, p["metadata"]["name"]
                assert labels["mlops.airflow.apache.org/release"] == RELEASE, p["metadata"]["name"]
    assert selecting >= 4  # tasks and serving policies, MLflow's two peers
