"""GitOps manifests on a real API server: the Argo CD and Flux CRDs (../shared/reference/gitops-crds)
installed, every manifest of values/gitops/ created with a server-side dry run and strict field
validation (unknown or misplaced fields are errors, as `kubectl apply --server-side` reports them).
The main suite validates the same objects offline against the CRDs' openAPIV3Schema
(tests/values/test_gitops.py). kwok nodes run no containers, and nothing here needs one: no Argo CD
or Flux controller runs, a dry run creates nothing.
"""

from __future__ import annotations

import pytest

from tests.values import gitops


@pytest.fixture(scope="module")
def crds(cluster) -> dict[tuple[str, str], tuple[str, str, str, bool]]:
    """Install the CRDs; {(apiVersion, kind): (group, version, plural, namespaced)}."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    ext = client.ApiextensionsV1Api(cluster.api)
    out = {}
    for crd in gitops.crd_documents():
        name = crd["metadata"]["name"]
        try:
            ext.create_custom_resource_definition(crd)
        except ApiException as e:
            if e.status != 409:
                raise
        cluster.wait_for(
            f"CRD {name} Established",
            lambda n=name: any(
                c.type == "Established" and c.status == "True"
                for c in (ext.read_custom_resource_definition(n).status.conditions or [])
            ),
            timeout=60,
        )
        spec = crd["spec"]
        for v in spec["versions"]:
            out[(f"{spec['group']}/{v['name']}", spec["names"]["kind"])] = (
                spec["group"],
                v["name"],
                spec["names"]["plural"],
                spec["scope"] == "Namespaced",
            )
    for o in gitops.manifests():
        ns = o[1]["metadata"].get("namespace")
        if ns:
            cluster.namespace(ns)
    return out


@pytest.mark.parametrize(
    "item",
    [
        pytest.param(m, id=f"{m[0].name}:{m[1]['kind']}/{m[1]['metadata']['name']}")
        for m in gitops.manifests()
    ],
)
def test_server_side_dry_run(cluster, crds, item) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    f, obj = item
    key = (obj["apiVersion"], obj["kind"])
    if key not in crds:
        pytest.skip(f"{obj['kind']}: its CRD is not in the reference set")
    group, version, plural, namespaced = crds[key]
    api = client.CustomObjectsApi(cluster.api)
    try:
        if namespaced:
            api.create_namespaced_custom_object(
                group,
                version,
                obj["metadata"]["namespace"],
                plural,
                obj,
                dry_run="All",
                field_validation="Strict",
            )
        else:
            api.create_cluster_custom_object(
                group, version, plural, obj, dry_run="All", field_validation="Strict"
            )
    except ApiException as e:
        pytest.fail(f"{f}: {obj['kind']}/{obj['metadata']['name']} rejected by the API server: {e.body}")


def test_server_rejects_an_unknown_field(cluster, crds) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    (hr,) = [o for _, o in gitops.manifests() if o["kind"] == "HelmRelease"][:1]
    bad = {**hr, "spec": {**hr["spec"], "valuesFile": "values/production.example.yaml"}}
    group, version, plural, _ = crds[(hr["apiVersion"], hr["kind"])]
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
            group, version, hr["metadata"]["namespace"], plural, bad, dry_run="All", field_validation="Strict"
        )
    assert "valuesFile" in err.value.body
