"""GitOps manifests (values/gitops/): their schemas, what they reference, and what they deploy.

Every Argo CD / Flux object is validated against the openAPIV3Schema of its CustomResourceDefinition
(../shared/reference/gitops-crds, strict like the API server's field validation); the control-plane
tier applies the same objects with a server-side dry run (tests/cluster/test_gitops_dry_run.py).
Each environment is then rendered exactly as Argo CD or Flux would render it (values files in
their order, release name, namespace): the AppProject admits every object, and no Job the
Airflow pods wait for is a hook that runs only after they are healthy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support import paths
from tests.support.helm import render_chart
from tests.values import gitops

HOOK = "helm.sh/hook"
ARGO_HOOK = "argocd.argoproj.io/hook"
# The official chart's Jobs the Airflow pods wait for (init container wait-for-airflow-migrations).
OFFICIAL_JOBS = ("run-airflow-migrations", "create-user-job")


def test_crds_are_there() -> None:
    gitops.require_crds_dir()
    kinds = {k for _, k in gitops.crd_schemas()}
    assert {
        "Application",
        "ApplicationSet",
        "AppProject",
        "HelmRelease",
        "GitRepository",
        "HelmRepository",
    } <= kinds


def test_there_are_argo_and_flux_manifests() -> None:
    kinds = {(o["apiVersion"], o["kind"]) for _, o in gitops.manifests()}
    assert ("argoproj.io/v1alpha1", "AppProject") in kinds
    assert ("argoproj.io/v1alpha1", "ApplicationSet") in kinds
    assert ("helm.toolkit.fluxcd.io/v2", "HelmRelease") in kinds
    assert ("source.toolkit.fluxcd.io/v1", "GitRepository") in kinds


@pytest.mark.parametrize(
    "item",
    [
        pytest.param((f, o), id=f"{f.relative_to(paths.REPO)}:{o['kind']}/{o['metadata']['name']}")
        for f, o in gitops.manifests()
    ],
)
def test_manifest_matches_its_crd_schema(item: tuple[Path, dict[str, Any]]) -> None:
    f, obj = item
    schemas = gitops.crd_schemas()
    key = (obj["apiVersion"], obj["kind"])
    if obj["apiVersion"].startswith(("argoproj.io/", "source.toolkit.fluxcd.io/", "helm.toolkit.fluxcd.io/")):
        assert key in schemas, f"{f}: {key} is not served by the CRDs in {paths.GITOPS_CRDS_DIR}"
    if key not in schemas:
        pytest.skip(f"{key[1]}: no CRD in the reference set (checked by its own test)")
    validator = jsonschema.Draft7Validator(schemas[key])
    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    ]
    assert not errors, f"{f}: {obj['kind']}/{obj['metadata']['name']}:\n" + "\n".join(errors)


def test_strict_schema_rejects_an_unknown_field() -> None:
    (appset,) = gitops.of_kind("ApplicationSet")
    bad = {**appset, "spec": {**appset["spec"], "syncPolicyy": {}}}
    schema = gitops.crd_schemas()[("argoproj.io/v1alpha1", "ApplicationSet")]
    assert any("syncPolicyy" in e.message for e in jsonschema.Draft7Validator(schema).iter_errors(bad))


# --- Argo CD ------------------------------------------------------------------------------------


def argo_environments() -> list[dict[str, Any]]:
    (appset,) = gitops.of_kind("ApplicationSet")
    (gen,) = appset["spec"]["generators"]
    return gen["list"]["elements"]


def argo_values_files(env: dict[str, Any]) -> list[Path]:
    """The values files of the Application the ApplicationSet generates for env, in order."""
    (appset,) = gitops.of_kind("ApplicationSet")
    source = appset["spec"]["template"]["spec"]["source"]
    chart = paths.REPO / source["path"]
    files = []
    for v in source["helm"]["valueFiles"]:
        for k, val in env.items():
            v = v.replace("{{ ." + k + " }}", str(val))
        assert "{{" not in v, v
        files.append((chart / v).resolve())
    return files


def test_applicationset_points_at_this_repository() -> None:
    (appset,) = gitops.of_kind("ApplicationSet")
    (project,) = gitops.of_kind("AppProject")
    spec = appset["spec"]["template"]["spec"]
    assert spec["project"] == project["metadata"]["name"]
    assert spec["source"]["repoURL"] in project["spec"]["sourceRepos"]
    assert (paths.REPO / spec["source"]["path"] / "Chart.yaml").exists()
    # No cascade delete of the platform (claims with data) when an Application is deleted.
    assert "finalizers" not in appset["spec"]["template"]["metadata"]
    assert "CreateNamespace=false" in spec["syncPolicy"]["syncOptions"]
    for env in argo_environments():
        for f in argo_values_files(env):
            assert f.is_file(), f"{env['environment']}: values file {f} does not exist"
        assert {"server": "https://kubernetes.default.svc", "namespace": env["namespace"]} in project["spec"][
            "destinations"
        ]


@pytest.mark.parametrize("env", argo_environments(), ids=lambda e: e["environment"])
def test_argo_render_fits_the_project_and_never_deadlocks(env: dict[str, Any]) -> None:
    (project,) = gitops.of_kind("AppProject")
    objects = render_chart(
        values_files=argo_values_files(env),
        release=env["release"],
        namespace=env["namespace"],
        include_subchart=True,
        validate_versions=(paths.DEFAULT_KUBE_VERSION,),
    )
    spec = project["spec"]
    cluster_kinds = {(k["group"], k["kind"]) for k in spec["clusterResourceWhitelist"]}
    ns_kinds = {(k["group"], k["kind"]) for k in spec["namespaceResourceWhitelist"]}
    namespaces = {d["namespace"] for d in spec["destinations"]}
    problems = []
    for o in objects:
        group = o["apiVersion"].rpartition("/")[0]
        ref = f"{o['kind']}/{o['metadata']['name']}"
        ns = o["metadata"].get("namespace")
        if o["kind"] in ("PersistentVolume",):
            if (group, o["kind"]) not in cluster_kinds:
                problems.append(f"{ref}: cluster-scoped kind not in the AppProject")
            continue
        if (group, o["kind"]) not in ns_kinds:
            problems.append(f"{ref}: kind not in the AppProject's namespaceResourceWhitelist")
        if ns is not None and ns not in namespaces:
            problems.append(f"{ref}: namespace {ns} is not a destination of the AppProject")
        annotations = o["metadata"].get("annotations") or {}
        if o["kind"] == "Job":
            component = (o["metadata"].get("labels") or {}).get("component", "")
            if component in OFFICIAL_JOBS:
                # a Helm post-install hook would be an Argo PostSync hook: after the pods that wait for it
                if HOOK in annotations or annotations.get(ARGO_HOOK) != "Sync":
                    problems.append(f"{ref}: must be an Argo CD Sync hook, not a Helm hook ({annotations})")
            elif (
                HOOK not in annotations
                and ARGO_HOOK not in annotations
                and "ttlSecondsAfterFinished" in o["spec"]
            ):
                problems.append(f"{ref}: a tracked Job deleted by its TTL shows the Application OutOfSync")
        elif HOOK in annotations:
            problems.append(f"{ref}: Helm hook {annotations[HOOK]} on a {o['kind']}")
    assert not problems, "\n".join(problems)


# --- Flux ---------------------------------------------------------------------------------------


def flux_releases() -> list[dict[str, Any]]:
    return gitops.of_kind("HelmRelease")


def test_flux_sources_are_this_repository() -> None:
    repos = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in gitops.of_kind("GitRepository")}
    (argo_repo,) = {
        o["spec"]["template"]["spec"]["source"]["repoURL"] for o in gitops.of_kind("ApplicationSet")
    }
    for hr in flux_releases():
        chart = hr["spec"]["chart"]["spec"]
        ref = chart["sourceRef"]
        assert ref["kind"] == "GitRepository"
        repo = repos[(ref.get("namespace", hr["metadata"]["namespace"]), ref["name"])]
        assert repo["spec"]["url"] == argo_repo
        assert (paths.REPO / chart["chart"] / "Chart.yaml").exists()
        # Flux drops the chart's values.yaml when valuesFiles is set: it must be listed first.
        assert chart["valuesFiles"][0] == "charts/airflow-mlops/values.yaml"
        for v in chart["valuesFiles"]:
            assert (paths.REPO / v).is_file(), f"{hr['metadata']['name']}: {v} does not exist"
        # The one --set-file of the install command, as valuesFrom.
        assert any(
            v.get("targetPath") == "airflow.dags.gitSync.knownHosts" for v in hr["spec"].get("valuesFrom", [])
        )


@pytest.mark.parametrize("hr", flux_releases(), ids=lambda o: o["metadata"]["name"])
def test_flux_render_never_deadlocks(hr: dict[str, Any]) -> None:
    spec = hr["spec"]
    objects = render_chart(
        values_files=[paths.REPO / v for v in spec["chart"]["spec"]["valuesFiles"]],
        release=spec["releaseName"],
        namespace=spec["targetNamespace"],
        include_subchart=True,
        validate_versions=(paths.DEFAULT_KUBE_VERSION,),
    )
    jobs = [o for o in objects if o["kind"] == "Job"]
    official = [o for o in jobs if (o["metadata"].get("labels") or {}).get("component") in OFFICIAL_JOBS]
    assert len(official) == 2, [o["metadata"]["name"] for o in jobs]
    for o in official:
        # helm-controller waits for the release before post-install hooks: the pods wait for these Jobs
        assert HOOK not in (o["metadata"].get("annotations") or {}), o["metadata"]["name"]
        env = {e["name"] for c in o["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
        assert "AIRFLOW__CORE__FERNET_KEY" in env  # applyCustomEnv false keeps the standard env


# --- objects created at run time ----------------------------------------------------------------

RUNTIME_RELEASE_LABEL = "mlops.airflow.apache.org/release"


def test_runtime_objects_are_marked_as_airflows_not_the_releases() -> None:
    """Task pods (pod templates) and the DAG's model servers (serving-deployment.yaml) say they are
    managed by Airflow and name the release with our own label, and carry nothing Argo CD's
    annotation tracking would take for a resource of the Application."""
    import yaml

    objects = render_chart(
        values_files=[paths.VALUES_DIR / "production.example.yaml"], release="mlops", namespace="mlops"
    )
    runtime = []
    for o in objects:
        if o["kind"] == "ConfigMap":
            for key, text in (o.get("data") or {}).items():
                doc = yaml.safe_load(text) if key.endswith(".yaml") else None
                if isinstance(doc, dict) and doc.get("kind") in ("Pod", "Deployment"):
                    runtime.append((key, doc))
    assert {k for k, _ in runtime} >= {"cpu.yaml", "gpu-1.yaml", "serving-deployment.yaml"}
    for key, doc in runtime:
        labels = doc["metadata"]["labels"]
        assert labels.get(RUNTIME_RELEASE_LABEL) == "mlops", key
        assert labels.get("app.kubernetes.io/managed-by") == "airflow", key
        assert not any(
            a.startswith("argocd.argoproj.io/") for a in doc["metadata"].get("annotations") or {}
        ), key
        if doc["kind"] == "Deployment":
            assert doc["spec"]["template"]["metadata"]["labels"].get(RUNTIME_RELEASE_LABEL) == "mlops"
