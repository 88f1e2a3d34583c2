"""NFS data sets (static PV bound to our claim) and the workspace claim: never deleted."""

from __future__ import annotations

from tests.support.helm import find, render_chart

NFS = {"enabled": True, "server": "10.0.0.20", "path": "/exports/datasets", "capacity": "1Ti"}


def test_nfs_pv_and_claim() -> None:
    objects = render_chart(values={"storage": {"nfs": NFS}, "tasks": {"namespace": "jobs"}})
    (pv,) = find(objects, "PersistentVolume")
    (pvc,) = find(objects, "PersistentVolumeClaim", "test-airflow-mlops-datasets")
    spec = pv["spec"]
    assert spec["nfs"] == {"server": "10.0.0.20", "path": "/exports/datasets", "readOnly": True}
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["storageClassName"] == ""
    assert spec["accessModes"] == ["ReadOnlyMany"]
    assert spec["capacity"] == {"storage": "1Ti"}
    assert spec["mountOptions"] == ["nfsvers=4.1"]
    assert spec["claimRef"]["name"] == pvc["metadata"]["name"]
    assert spec["claimRef"]["namespace"] == pvc["metadata"]["namespace"] == "jobs"
    assert pvc["spec"]["volumeName"] == pv["metadata"]["name"]
    assert pvc["spec"]["storageClassName"] == ""
    assert pv["metadata"]["name"].startswith("airflow-mlops-")  # namespaced name for a cluster object
    for obj in (pv, pvc):
        assert obj["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_nfs_read_write() -> None:
    objects = render_chart(values={"storage": {"nfs": {**NFS, "readOnly": False}}})
    (pv,) = find(objects, "PersistentVolume")
    assert pv["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pv["spec"]["nfs"]["readOnly"] is False


def test_workspace_claim() -> None:
    (pvc,) = find(render_chart(), "PersistentVolumeClaim", "test-airflow-mlops-workspace")
    assert pvc["metadata"]["name"] == "test-airflow-mlops-workspace"
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert "storageClassName" not in pvc["spec"]  # cluster default
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"


def test_workspace_storage_class_variants() -> None:
    (pvc,) = find(
        render_chart(values={"storage": {"workspace": {"storageClassName": "-"}}}),
        "PersistentVolumeClaim",
        "test-airflow-mlops-workspace",
    )
    assert pvc["spec"]["storageClassName"] == ""
    (pvc,) = find(
        render_chart(values={"storage": {"workspace": {"storageClassName": "fast"}}}),
        "PersistentVolumeClaim",
        "test-airflow-mlops-workspace",
    )
    assert pvc["spec"]["storageClassName"] == "fast"


def test_existing_or_disabled_workspace_renders_no_claim() -> None:
    assert (
        find(
            render_chart(values={"storage": {"workspace": {"existingClaim": "x"}}}),
            "PersistentVolumeClaim",
            "test-airflow-mlops-workspace",
        )
        == []
    )
    assert (
        find(
            render_chart(values={"storage": {"workspace": {"enabled": False}}}),
            "PersistentVolumeClaim",
            "test-airflow-mlops-workspace",
        )
        == []
    )
