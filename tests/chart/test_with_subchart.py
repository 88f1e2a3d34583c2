"""The umbrella rendered together with the official Airflow chart 1.20.0.

They check the assumptions our layer makes about the official chart: that Airflow's own pods get
the platform.json and pod-template mounts from `airflow.volumes`/`volumeMounts`, the service
account names our RoleBindings bind, the metadata Secret the pools Job reads, the pull secret
on Airflow's pods, git-sync's host-key checking, and the labels our NetworkPolicy selects.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import paths
from tests.support.helm import is_subchart_object, render_chart
from tests.support.k8s import containers, pod_specs
from tests.support.overlays import with_overlays

RELEASE = "mlops"
NAMESPACE = "mlops"
SCENARIOS = paths.values_files()
AIRFLOW_COMPONENTS = {"scheduler", "dag-processor", "triggerer", "api-server", "worker"}


@functools.cache
def _render(values_file: Path) -> tuple[dict[str, Any], ...]:
    return tuple(
        render_chart(
            values_files=with_overlays(values_file),
            release=RELEASE,
            namespace=NAMESPACE,
            include_subchart=True,
        )
    )


def ours(objects) -> list[dict[str, Any]]:
    return [o for o in objects if not is_subchart_object(o)]


def official(objects) -> list[dict[str, Any]]:
    return [o for o in objects if is_subchart_object(o)]


def airflow_workloads(objects) -> list[dict[str, Any]]:
    """The official chart's long-running Airflow components (by its `component` label)."""
    found = []
    for obj in official(objects):
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        labels = obj["spec"]["template"]["metadata"].get("labels") or {}
        if labels.get("component") in AIRFLOW_COMPONENTS:
            found.append(obj)
    return found


def our_configmap(objects, suffix: str) -> str:
    (name,) = [
        o["metadata"]["name"]
        for o in ours(objects)
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith(suffix)
    ]
    return name


@pytest.mark.parametrize("values_file", SCENARIOS, ids=lambda p: p.name)
@pytest.mark.parametrize("kube_version", paths.KUBE_VERSIONS)
def test_umbrella_renders_and_every_object_validates(values_file: Path, kube_version: str) -> None:
    objects = render_chart(
        values_files=with_overlays(values_file),
        release=RELEASE,
        namespace=NAMESPACE,
        kube_version=kube_version,
        validate_versions=[kube_version],
        include_subchart=True,
    )
    assert official(objects), "the official chart rendered nothing"
    assert ours(objects)


@pytest.mark.parametrize("values_file", SCENARIOS, ids=lambda p: p.name)
def test_airflow_components_mount_platform_config_and_pod_templates(values_file: Path) -> None:
    objects = _render(values_file)
    platform_cm = our_configmap(objects, "-platform")
    templates_cm = our_configmap(objects, "-pod-templates")
    workloads = airflow_workloads(objects)
    components = {o["spec"]["template"]["metadata"]["labels"]["component"] for o in workloads}
    assert {"scheduler", "dag-processor", "api-server", "triggerer"} <= components
    for obj in workloads:
        ((_, spec),) = list(pod_specs(obj))
        by_volume = {v["name"]: v["configMap"]["name"] for v in spec.get("volumes") or [] if "configMap" in v}
        assert platform_cm in by_volume.values(), f"{obj['metadata']['name']}: no {platform_cm} volume"
        assert templates_cm in by_volume.values(), f"{obj['metadata']['name']}: no {templates_cm} volume"
        main = [c for field, c in containers(spec) if field == "containers" and c["name"] != "git-sync"]
        for c in main[:1]:
            mounts = {m["mountPath"]: by_volume.get(m["name"]) for m in c.get("volumeMounts") or []}
            assert mounts.get("/opt/airflow/platform") == platform_cm, (obj["metadata"]["name"], mounts)
            assert mounts.get("/opt/airflow/pod-templates") == templates_cm, (obj["metadata"]["name"], mounts)


@pytest.mark.parametrize("values_file", SCENARIOS, ids=lambda p: p.name)
def test_our_role_bindings_bind_service_accounts_the_official_chart_creates(values_file: Path) -> None:
    objects = _render(values_file)
    accounts = {
        (o["metadata"].get("namespace", NAMESPACE), o["metadata"]["name"])
        for o in objects
        if o["kind"] == "ServiceAccount"
    }
    for binding in ours(objects):
        if binding["kind"] != "RoleBinding":
            continue
        for subject in binding["subjects"]:
            if subject["kind"] != "ServiceAccount":
                continue
            key = (subject.get("namespace", NAMESPACE), subject["name"])
            assert key in accounts, f"{binding['metadata']['name']} binds {key}, which nothing renders"


@pytest.mark.parametrize("values_file", SCENARIOS, ids=lambda p: p.name)
def test_pools_job_reads_the_metadata_secret_the_official_chart_uses(values_file: Path) -> None:
    objects = _render(values_file)
    jobs = [o for o in ours(objects) if o["kind"] == "Job" and "pools" in o["metadata"]["name"]]
    secrets = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
    scheduler = [
        o
        for o in airflow_workloads(objects)
        if o["spec"]["template"]["metadata"]["labels"]["component"] == "scheduler"
    ]
    scheduler_refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for _, spec in pod_specs(scheduler[0])
        for _, c in containers(spec)
        for e in c.get("env") or []
        if e["name"] == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" and "valueFrom" in e
    }
    for job in jobs:
        for _, spec in pod_specs(job):
            for _, c in containers(spec):
                for e in c.get("env") or []:
                    if e["name"] == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
                        name = e["valueFrom"]["secretKeyRef"]["name"]
                        assert name in scheduler_refs, (name, scheduler_refs)
                        # the Secret the values name (the chart's default airflow-metadata, made by
                        # scripts/platform-secrets) or, without one, the official chart's own
                        given = (yaml.safe_load(values_file.read_text()) or {}).get("airflow", {}).get(
                            "data", {}).get("metadataSecretName", "airflow-metadata")
                        if given:
                            assert name == given, (name, given)
                        else:
                            assert name in secrets, f"{name}: the official chart renders no such Secret"


def test_registry_pull_secret_reaches_airflow_pods() -> None:
    values_file = paths.CI_VALUES_DIR / "05-all-features-values.yaml"
    objects = _render(values_file)
    registry_secrets = [
        o["metadata"]["name"]
        for o in ours(objects)
        if o["kind"] == "Secret" and o.get("type") == "kubernetes.io/dockerconfigjson"
    ]
    assert registry_secrets, "05-all-features renders no registry Secret"
    for obj in airflow_workloads(objects):
        ((_, spec),) = list(pod_specs(obj))
        pulled = {s["name"] for s in spec.get("imagePullSecrets") or []}
        assert set(registry_secrets) & pulled, (obj["metadata"]["name"], pulled)


def test_git_sync_checks_host_keys_on_kind() -> None:
    objects = _render(paths.VALUES_DIR / "kind.yaml")
    seen = 0
    for obj in official(objects):
        for _, spec in pod_specs(obj):
            for _, c in containers(spec):
                if not c["name"].startswith("git-sync"):
                    continue
                env = {e["name"]: e.get("value") for e in c.get("env") or []}
                assert env.get("GIT_KNOWN_HOSTS") == "true", (obj["metadata"]["name"], c["name"])
                seen += 1
    assert seen, "no git-sync container rendered for values/kind.yaml"


def in_release_namespace(peer: dict[str, Any]) -> bool:
    """A NetworkPolicy peer that selects pods of the release namespace."""
    if "namespaceSelector" not in peer:
        return True
    labels = peer["namespaceSelector"].get("matchLabels") or {}
    return labels.get("kubernetes.io/metadata.name", NAMESPACE) == NAMESPACE


def test_mlflow_network_policy_admits_the_official_airflow_pods() -> None:
    objects = _render(paths.VALUES_DIR / "kind.yaml")
    policies = [o for o in ours(objects) if o["kind"] == "NetworkPolicy"]
    assert policies
    selectors = [
        peer["podSelector"].get("matchLabels") or {}
        for pol in policies
        for rule in pol["spec"].get("ingress") or []
        for peer in rule.get("from") or []
        if "podSelector" in peer and in_release_namespace(peer)
    ]
    for obj in airflow_workloads(objects):
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert any(all(labels.get(k) == v for k, v in sel.items()) for sel in selectors if sel), (
            obj["metadata"]["name"],
            labels,
            selectors,
        )
