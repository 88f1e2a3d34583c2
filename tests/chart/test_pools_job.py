"""The pools Job: Airflow image, metadata secret, waits for migrations, hook and non-hook modes."""

from __future__ import annotations

import json

from tests.support.helm import find, render_chart

JOB = "templates/pools/pools-job.yaml"
CM = "templates/pools/pools-configmap.yaml"


def job(values: dict | None = None, release: str = "mlops") -> dict:
    (j,) = find(render_chart(values=values, show_only=[JOB], release=release), "Job")
    return j


def test_hook_mode_defaults() -> None:
    j = job()
    ann = j["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "post-install,post-upgrade"
    # after the official chart's migrate-database (1) and create-user (2) hooks
    assert int(ann["helm.sh/hook-weight"]) > 2
    assert j["metadata"]["name"] == "mlops-airflow-mlops-pools"
    (c,) = j["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "apache/airflow:3.1.8"
    script = " ".join(c["args"])
    assert script.index("airflow db check-migrations") < script.index("airflow pools import")
    env = {e["name"]: e for e in c["env"]}
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"] == {
        "name": "airflow-metadata",  # the chart's default airflow.data.metadataSecretName
        "key": "connection",
    }
    assert env["MIGRATION_WAIT_TIMEOUT"]["value"] == "600"


def test_pools_json_is_what_airflow_pools_import_reads() -> None:
    (cm,) = find(render_chart(show_only=[CM]), "ConfigMap")
    assert json.loads(cm["data"]["pools.json"]) == {
        "gpu": {
            "slots": 8,
            "description": "GPUs available to Airflow tasks (one slot per GPU)",
            "include_deferred": False,
        }
    }


def test_metadata_secret_and_image_follow_the_official_values() -> None:
    j = job(
        {
            "airflow": {
                "data": {"metadataSecretName": "db-uri"},
                "images": {"airflow": {"repository": "mlops.local/airflow", "tag": "dev"}},
                "imagePullSecrets": ["a", {"name": "b"}],
            }
        }
    )
    spec = j["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["image"] == "mlops.local/airflow:dev"
    env = {e["name"]: e for e in c["env"]}
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"]["name"] == "db-uri"
    assert spec["imagePullSecrets"] == [{"name": "a"}, {"name": "b"}]

    def secret(values: dict) -> str:
        env = {e["name"]: e for e in job(values)["spec"]["template"]["spec"]["containers"][0]["env"]}
        return env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"]["name"]

    # Without a metadataSecretName the official chart names its own Secret <airflow.fullname>-metadata;
    # fullnameOverride counts only with useStandardNaming (the official airflow.fullname).
    unset = {"data": {"metadataSecretName": None}}
    assert secret({"airflow": {"fullnameOverride": "af", **unset}}) == "mlops-metadata"
    assert secret({"airflow": {"fullnameOverride": "af", "useStandardNaming": True, **unset}}) == "af-metadata"
    assert secret({"airflow": {"useStandardNaming": True, **unset}}) == "mlops-airflow-metadata"


def test_image_digest_wins_as_in_the_official_chart() -> None:
    digest = "sha256:" + "ab" * 32
    j = job({"airflow": {"images": {"airflow": {"repository": "mlops.local/airflow", "digest": digest}}}})
    assert j["spec"]["template"]["spec"]["containers"][0]["image"] == f"mlops.local/airflow@{digest}"


def test_without_hooks_the_name_changes_with_the_content() -> None:
    a = job({"pools": {"useHelmHooks": False}})
    assert "annotations" not in a["metadata"]
    b = job({"pools": {"useHelmHooks": False, "items": [{"name": "gpu", "slots": 16}]}})
    again = job({"pools": {"useHelmHooks": False}})
    assert a["metadata"]["name"] != b["metadata"]["name"]
    assert a["metadata"]["name"] == again["metadata"]["name"]
    assert a["metadata"]["name"].startswith("mlops-airflow-mlops-pools-")


def test_disabled() -> None:
    objects = render_chart(values={"pools": {"enabled": False}})
    assert find(objects, "Job") == []


def test_placement() -> None:
    """nodeSelector, tolerations and affinity reach the Job's pod (none by default)."""
    assert not {"nodeSelector", "tolerations", "affinity"} & set(job()["spec"]["template"]["spec"])
    toleration = {"key": "dedicated", "operator": "Equal", "value": "airflow", "effect": "NoSchedule"}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}]}}}
    spec = job({"pools": {"nodeSelector": {"dedicated": "airflow"}, "tolerations": [toleration],
                          "affinity": affinity}})["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"dedicated": "airflow"}
    assert spec["tolerations"] == [toleration]
    assert spec["affinity"] == affinity
