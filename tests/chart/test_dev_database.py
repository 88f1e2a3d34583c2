"""The development PostgreSQL: official image pinned, restricted, data on a claim, no secret rendered."""

from __future__ import annotations

from tests.support.helm import find, render_chart

ON = {
    "devDatabase": {"enabled": True, "auth": {"existingSecret": "dev-db"}},
    "airflow": {"postgresql": {"enabled": False}, "data": {"metadataSecretName": "meta"}},
}


def test_disabled_by_default() -> None:
    assert find(render_chart(), "StatefulSet") == []


def test_statefulset() -> None:
    objects = render_chart(values=ON, release="mlops", namespace="mlops")
    (sts,) = find(objects, "StatefulSet")
    (svc,) = find(objects, "Service", "mlops-airflow-mlops-dev-database")
    assert svc["metadata"]["name"] == "mlops-airflow-mlops-dev-database"
    spec = sts["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    repo, tag = c["image"].split(":")
    assert repo == "postgres" and tag and tag != "latest"
    assert "bitnami" not in c["image"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "dev-db", "key": "password"}
    assert env["POSTGRES_DB"]["value"] == "airflow"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert find(objects, "Secret") == []
    (init,) = [o for o in find(objects, "ConfigMap") if o["metadata"]["name"].endswith("-init")]
    assert 'CREATE DATABASE "mlflow"' in init["data"]["10-databases.sh"]


def test_placement() -> None:
    """nodeSelector, tolerations and affinity reach the database pod (none by default)."""
    (sts,) = find(render_chart(values=ON), "StatefulSet")
    spec = sts["spec"]["template"]["spec"]
    assert not {"nodeSelector", "tolerations", "affinity"} & set(spec)
    toleration = {"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}}
    placed = {"devDatabase": {**ON["devDatabase"], "nodeSelector": {"dedicated": "db"},
                              "tolerations": [toleration], "affinity": affinity}, "airflow": ON["airflow"]}
    (sts,) = find(render_chart(values=placed), "StatefulSet")
    spec = sts["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"dedicated": "db"}
    assert spec["tolerations"] == [toleration]
    assert spec["affinity"] == affinity


def test_pull_secret_with_the_registry() -> None:
    """With the platform registry on, the database pod pulls with its credential too (an image
    mirrored there, e.g. a Nexus proxy of Docker Hub); without it, no pull secret."""
    (sts,) = find(render_chart(values=ON), "StatefulSet")
    assert "imagePullSecrets" not in sts["spec"]["template"]["spec"]
    values = {**ON, "registry": {"enabled": True, "server": "nexus.example.com", "existingSecret": "pull"},
              "airflow": {**ON["airflow"], "imagePullSecrets": ["pull"]},
              "devDatabase": {**ON["devDatabase"], "image": {"repository": "nexus.example.com/dockerhub/postgres"}}}
    (sts,) = find(render_chart(values=values), "StatefulSet")
    assert sts["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "pull"}]
