"""Model serving templates: per-model Deployment + Service, one host-routed Ingress, Role + RoleBinding."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.helm import HelmError, find, render_chart
from tests.support.k8s import pod_specs, restricted_violations

REL, NS = "mlops", "mlops"
SERVING_NS = "mlops-serving"  # the default: <release namespace>-serving
PREFIX = "mlops-airflow-mlops"
SERVING = {
    "serving": {
        "enabled": True,
        "domain": "models.example.com",
        "ingressClassName": "nginx",
        "models": [
            {"name": "iris", "modelUri": "models:/iris@champion"},
            {
                "name": "wine",
                "modelUri": "models:/wine/3",
                "replicas": 2,
                "workers": 2,
                "profile": "gpu-1",
                "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
            },
        ],
    }
}


def render(values: dict | None = None, namespace: str = NS):
    return render_chart(values=values, release=REL, namespace=namespace, template_folders=["serving"])


def with_serving(**over) -> dict:
    return {"serving": {**SERVING["serving"], **over}}


def deployment(objects, model: str) -> dict:
    (dep,) = find(objects, "Deployment", f"{PREFIX}-serving-{model}")
    return dep


def test_disabled_by_default() -> None:
    assert render() == []


def test_per_model_deployment_runs_mlflow_models_serve() -> None:
    objects = render(SERVING)
    dep = deployment(objects, "iris")
    spec = dep["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["command"] == [
        "mlflow", "models", "serve",
        "-m", "models:/iris@champion",
        "--env-manager", "local",
        "-h", "0.0.0.0", "-p", "8080",
        "--workers", "1",
    ]  # fmt: skip
    assert c["readinessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    assert env["MLFLOW_TRACKING_URI"] == f"http://{PREFIX}-mlflow.{NS}.svc.cluster.local:5000"
    # mlflow.auth (default on): the model download authenticates with the client Secret
    assert env["MLFLOW_TRACKING_USERNAME"] == {"secretKeyRef": {"name": "mlflow-auth", "key": "username"}}
    assert env["MLFLOW_TRACKING_PASSWORD"] == {"secretKeyRef": {"name": "mlflow-auth", "key": "password"}}
    assert env["HOME"] == "/tmp"
    assert c["image"].endswith("/mlflow:0.1.0") or c["image"] == "mlflow:0.1.0"
    assert dep["spec"]["replicas"] == 1
    for where, pod in pod_specs(dep):
        assert restricted_violations(pod, where) == []
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert spec["automountServiceAccountToken"] is False
    assert "nodeSelector" not in spec


def test_model_options_and_gpu_profile_placement() -> None:
    dep = deployment(render(SERVING), "wine")
    spec = dep["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert dep["spec"]["replicas"] == 2
    assert c["command"][c["command"].index("--workers") + 1] == "2"
    assert c["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]


def test_service_selects_only_its_model() -> None:
    objects = render(SERVING)
    for model in ("iris", "wine"):
        (svc,) = find(objects, "Service", f"{PREFIX}-serving-{model}")
        dep = deployment(objects, model)
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert svc["spec"]["selector"]["mlops.airflow.apache.org/model"] == model
        assert svc["spec"]["ports"] == [
            {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
        ]
        # the MLflow NetworkPolicy admits model servers by these labels
        assert pod_labels["app.kubernetes.io/component"] == "model-serving"
        assert pod_labels["mlops.airflow.apache.org/release"] == REL
        # chart-managed: Helm's labels (the DAG's servers carry no app.kubernetes.io/instance)
        assert pod_labels["app.kubernetes.io/instance"] == REL
    other = deployment(objects, "wine")["spec"]["template"]["metadata"]["labels"]
    (iris_svc,) = find(objects, "Service", f"{PREFIX}-serving-iris")
    assert not iris_svc["spec"]["selector"].items() <= other.items()


def test_mlflow_network_policy_admits_the_model_servers() -> None:
    objects = render_chart(values=SERVING, release=REL, namespace=NS)
    (np,) = find(objects, "NetworkPolicy", f"{PREFIX}-mlflow")
    peers = np["spec"]["ingress"][0]["from"]
    labels = deployment(objects, "iris")["spec"]["template"]["metadata"]["labels"]
    matching = [
        p
        for p in peers
        if p["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": SERVING_NS}}
        and p["podSelector"]["matchLabels"].items() <= labels.items()
    ]
    assert matching, f"no peer admits the model server labels {labels}"


def test_one_ingress_routes_each_model_host() -> None:
    (ing,) = find(render(SERVING), "Ingress")
    assert ing["metadata"]["name"] == f"{PREFIX}-serving"
    assert ing["spec"]["ingressClassName"] == "nginx"
    routes = {r["host"]: r["http"]["paths"][0] for r in ing["spec"]["rules"]}
    assert set(routes) == {"iris.models.example.com", "wine.models.example.com"}
    for model in ("iris", "wine"):
        path = routes[f"{model}.models.example.com"]
        assert path["path"] == "/" and path["pathType"] == "Prefix"
        assert path["backend"]["service"] == {"name": f"{PREFIX}-serving-{model}", "port": {"name": "http"}}
    assert "tls" not in ing["spec"]


def test_ingress_tls_covers_every_host() -> None:
    (ing,) = find(render(with_serving(tls={"enabled": True, "secretName": "models-tls"})), "Ingress")
    assert ing["spec"]["tls"] == [
        {"hosts": ["iris.models.example.com", "wine.models.example.com"], "secretName": "models-tls"}
    ]


@pytest.mark.parametrize(
    "secret_name,expected", [("models-tls", "models-tls"), ("", f"{PREFIX}-serving-tls")]
)
def test_the_dag_ingresses_get_the_same_tls_secret(secret_name: str, expected: str) -> None:
    objects = render_chart(
        values=with_serving(tls={"enabled": True, "secretName": secret_name}), release=REL, namespace=NS
    )
    (ing,) = find(objects, "Ingress")
    (cm,) = [o for o in find(objects, "ConfigMap") if "platform.json" in (o.get("data") or {})]
    assert ing["spec"]["tls"][0]["secretName"] == expected
    assert json.loads(cm["data"]["platform.json"])["serving"]["tlsSecretName"] == expected


def test_no_models_no_ingress_but_rbac_for_the_dag() -> None:
    objects = render(with_serving(models=[]))
    # The NetworkPolicy also covers the model servers the ml_serving DAG rolls out (same labels).
    assert sorted(o["kind"] for o in objects) == ["NetworkPolicy", "Role", "RoleBinding"]


def test_everything_of_serving_lives_in_its_own_namespace_by_default() -> None:
    """Model servers, Services, Ingress, Role, RoleBinding, NetworkPolicy and the pull secret copy
    in <release namespace>-serving; nothing of serving in the release namespace (where MLflow is)."""
    values = {
        **SERVING,
        "registry": {"enabled": True, "server": "nexus.example.com", "username": "u", "password": "p"},
        "airflow": {"imagePullSecrets": [f"{PREFIX}-registry"]},
    }
    objects = render_chart(values=values, release=REL, namespace=NS, include_subchart=True)
    serving_kinds = {
        (o["kind"], o["metadata"]["name"]) for o in objects if o["metadata"].get("namespace") == SERVING_NS
    }
    assert serving_kinds == {
        ("Deployment", f"{PREFIX}-serving-iris"),
        ("Deployment", f"{PREFIX}-serving-wine"),
        ("Service", f"{PREFIX}-serving-iris"),
        ("Service", f"{PREFIX}-serving-wine"),
        ("Ingress", f"{PREFIX}-serving"),
        ("Role", f"{PREFIX}-serving"),
        ("RoleBinding", f"{PREFIX}-serving"),
        ("NetworkPolicy", f"{PREFIX}-serving"),
        ("Secret", f"{PREFIX}-registry"),
    }
    in_release = [o for o in objects if (o["metadata"].get("namespace") or NS) == NS]
    assert [
        (o["kind"], o["metadata"]["name"])
        for o in in_release
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "model-serving"
    ] == []
    # no Role of the release namespace grants what the serving Role grants
    for role in find(in_release, "Role"):
        granted = {r for rule in role["rules"] for r in rule["resources"]}
        assert not {"deployments", "services", "ingresses"} & granted, role["metadata"]["name"]
    (secret,) = [
        o for o in find(objects, "Secret", f"{PREFIX}-registry") if o["metadata"]["namespace"] == SERVING_NS
    ]
    (original,) = [
        o for o in find(objects, "Secret", f"{PREFIX}-registry") if o["metadata"]["namespace"] == NS
    ]
    assert secret["data"] == original["data"]
    # the DAG reads the namespace from platform.json
    (cm,) = [o for o in find(objects, "ConfigMap") if "platform.json" in (o.get("data") or {})]
    assert json.loads(cm["data"]["platform.json"])["serving"]["namespace"] == SERVING_NS
    dag_dep = yaml.safe_load(cm["data"]["serving-deployment.yaml"])
    assert dag_dep["metadata"]["namespace"] == SERVING_NS
    assert {"name": f"{PREFIX}-registry"} in dag_dep["spec"]["template"]["spec"]["imagePullSecrets"]


def test_existing_pull_secret_is_not_copied() -> None:
    values = {
        **SERVING,
        "registry": {"enabled": True, "server": "nexus.example.com", "existingSecret": "nexus-pull"},
        "airflow": {"imagePullSecrets": ["nexus-pull"]},
    }
    objects = render_chart(values=values, release=REL, namespace=NS)
    assert find(objects, "Secret") == []
    pod = deployment(objects, "iris")["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "nexus-pull"}]


def test_explicit_serving_namespace_and_the_default_name_budget() -> None:
    objects = render(with_serving(namespace="models"))
    assert {o["metadata"]["namespace"] for o in objects} == {"models"}
    # <release namespace>-serving must be a namespace name (at most 63 characters)
    long_ns = "n" * 56
    with pytest.raises(HelmError) as excinfo:
        render_chart(values=SERVING, release=REL, namespace=long_ns)
    assert "serving.namespace: the default <release namespace>-serving" in str(excinfo.value)
    assert "longer than 63 characters" in str(excinfo.value)
    assert render_chart(values=with_serving(namespace="models"), release=REL, namespace=long_ns)


def test_role_is_namespaced_and_limited() -> None:
    objects = render(with_serving(namespace="ml-serving"))
    (role,) = find(objects, "Role")
    assert role["metadata"]["namespace"] == "ml-serving"
    resources = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert resources == {
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("", "services"),
        ("", "pods"),
        ("networking.k8s.io", "ingresses"),
    }
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "escalate" not in rule["verbs"]
        if rule["resources"] in (["replicasets"], ["pods"]):
            assert set(rule["verbs"]) == {"get", "list", "watch"}
    assert find(render_chart(values=SERVING, release=REL, namespace=NS), "ClusterRole") == []
    for obj in objects:
        assert obj["metadata"]["namespace"] == "ml-serving"


def test_role_binding_binds_the_airflow_service_accounts() -> None:
    (rb,) = find(render(with_serving(namespace="ml-serving")), "RoleBinding")
    assert rb["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": f"{PREFIX}-serving",
    }
    subjects = {(s["name"], s["namespace"]) for s in rb["subjects"]}
    # LocalExecutor: the scheduler runs the tasks; the triggerer watches deferred pods.
    assert subjects == {(f"{REL}-airflow-{c}", NS) for c in ("scheduler", "triggerer")}
    (rb,) = find(
        render(with_serving(rbac={"create": True, "serviceAccountNames": ["runner"]})), "RoleBinding"
    )
    assert [s["name"] for s in rb["subjects"]] == ["runner"]
    assert find(render(with_serving(rbac={"create": False})), "Role") == []


@pytest.mark.parametrize(
    "values,message",
    [
        (with_serving(domain=""), "serving.domain is required"),
        (with_serving(models=[{"name": "iris"}]), "modelUri"),
        (with_serving(models=[{"name": "iris", "modelUri": ""}]), "modelUri"),
        (
            with_serving(
                models=[
                    {"name": "iris", "modelUri": "models:/a@b"},
                    {"name": "iris", "modelUri": "models:/c@d"},
                ]
            ),
            'the model name "iris" is listed twice',
        ),
        (
            with_serving(models=[{"name": "iris", "modelUri": "models:/iris@champion", "profile": "gpu-3"}]),
            'profile "gpu-3" is not defined',
        ),
        (with_serving(models=[{"name": "Iris_1", "modelUri": "models:/x@y"}]), "serving.models[0].name"),
        (with_serving(models=[{"name": "iris", "modelUri": "iris"}]), "serving.models[0].modelUri"),
        (with_serving(unknown=True), "unknown"),
    ],
    ids=[
        "no-domain",
        "no-uri",
        "empty-uri",
        "duplicate",
        "bad-profile",
        "bad-name",
        "bad-uri",
        "unknown-key",
    ],
)
def test_bad_values_fail_with_a_message(values: dict, message: str) -> None:
    with pytest.raises(HelmError) as excinfo:
        render_chart(values=values, release=REL, namespace=NS)
    assert message in str(excinfo.value)
