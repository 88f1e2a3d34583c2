"""Network isolation, evaluated with the NetworkPolicy semantics on the rendered objects.

Every pod the platform runs (the official chart's, ours, a task pod from each pod template, a
model server) plus the cluster DNS, the ingress controller, a pod of another namespace and an
address outside the cluster are endpoints; a connection is allowed when the source's egress
and the destination's ingress both allow it (a pod no policy selects for a direction is open
in that direction; rules are ORed; peers, ports and named ports as Kubernetes reads them).
"""

from __future__ import annotations

import pytest

from tests.support import paths
from tests.support.helm import find, render_chart
from tests.support.network_policy_model import (
    AIRFLOW,
    DB,
    MLFLOW,
    NS,
    POOLS,
    RELEASE,
    SERVER,
    TASKS,
    TASKS_NS,
    Endpoint,
    allowed,
    endpoints,
    ep,
    policy_types,
    selects,
)
from tests.support.network_policy_model import world as render_world


@pytest.fixture(scope="module")
def world() -> tuple[list[dict], dict]:
    return render_world()


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
