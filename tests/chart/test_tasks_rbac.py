"""Task namespace RBAC: exactly what the KubernetesPodOperator needs, nothing cluster-wide."""

from __future__ import annotations

import pytest

from tests.support.helm import HelmError, find, render_chart


def rbac(values: dict, release: str = "mlops") -> list[dict]:
    return render_chart(values=values, release=release, namespace="mlops")


LAUNCH_RULES = {
    (("",), ("pods",)): sorted(["create", "get", "list", "watch", "delete", "patch"]),
    (("",), ("pods/log",)): ["get"],
    (("",), ("events",)): ["get", "list", "watch"],
}


def rules_of(role: dict) -> dict:
    return {(tuple(r["apiGroups"]), tuple(r["resources"])): sorted(r["verbs"]) for r in role["rules"]}


def test_release_namespace_role_without_exec_replaces_the_official_one() -> None:
    """The official pod-launcher Role always grants pods/exec: it is off, ours replaces it."""
    objects = rbac({})
    (role,) = find(objects, "Role")
    assert role["metadata"]["namespace"] == "mlops"
    assert rules_of(role) == LAUNCH_RULES
    (rb,) = find(objects, "RoleBinding")
    assert rb["roleRef"]["name"] == role["metadata"]["name"]
    every = render_chart(values={}, release="mlops", namespace="mlops", include_subchart=True)
    for obj in every:
        if obj["kind"] in ("Role", "ClusterRole"):
            assert all("pods/exec" not in r.get("resources", []) for r in obj.get("rules") or []), obj["metadata"]


def test_role_verbs_in_the_task_namespace() -> None:
    objects = rbac({"tasks": {"namespace": "mlops-jobs"}})
    (role,) = find(objects, "Role")
    assert role["metadata"]["namespace"] == "mlops-jobs"
    assert rules_of(role) == LAUNCH_RULES
    assert not any(o["kind"].startswith("Cluster") for o in objects)


def test_exec_only_when_a_value_turns_it_on() -> None:
    (role,) = find(rbac({"tasks": {"namespace": "jobs", "rbac": {"podsExec": True}}}), "Role")
    assert rules_of(role)[(("",), ("pods/exec",))] == ["create", "get"]


def test_official_pod_launcher_role_needs_exec_acknowledged() -> None:
    with pytest.raises(HelmError, match=r"airflow.allowPodLaunching=true .* tasks.rbac.podsExec"):
        rbac({"airflow": {"allowPodLaunching": True}})
    rbac({"airflow": {"allowPodLaunching": True}, "tasks": {"rbac": {"podsExec": True}}})


def subjects(values: dict, release: str = "mlops") -> set[tuple[str, str]]:
    (rb,) = find(rbac({"tasks": {"namespace": "mlops-jobs"}, **values}, release=release), "RoleBinding")
    assert rb["metadata"]["namespace"] == "mlops-jobs"
    return {(s["name"], s["namespace"]) for s in rb["subjects"]}


def test_binding_role_ref() -> None:
    (rb,) = find(rbac({"tasks": {"namespace": "mlops-jobs"}}), "RoleBinding")
    assert rb["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "mlops-airflow-mlops-task-launcher",
    }


@pytest.mark.parametrize(
    ("executor", "launchers"),
    [
        # LocalExecutor: tasks run inside the scheduler; the official chart renders no worker.
        ("LocalExecutor", {"scheduler"}),
        ("CeleryExecutor", {"worker"}),
        ("KubernetesExecutor", {"worker"}),
        ("CeleryExecutor,KubernetesExecutor", {"worker"}),
        ("LocalExecutor,KubernetesExecutor", {"scheduler", "worker"}),
    ],
)
def test_binding_subjects_follow_the_executor(executor: str, launchers: set[str]) -> None:
    expected = {(f"mlops-airflow-{c}", "mlops") for c in launchers | {"triggerer"}}
    assert subjects({"airflow": {"executor": executor}}) == expected


def test_no_triggerer_binding_without_triggerer() -> None:
    values = {"airflow": {"triggerer": {"enabled": False}}}
    assert subjects(values) == {("mlops-airflow-scheduler", "mlops")}


def test_unknown_executor_is_refused_with_the_value_to_set() -> None:
    with pytest.raises(HelmError) as excinfo:
        rbac({"tasks": {"namespace": "jobs"}, "airflow": {"executor": "my.module.MyExecutor"}})
    message = str(excinfo.value)
    assert "airflow.executor" in message and "tasks.rbac.serviceAccountNames" in message


def test_binding_follows_official_overrides() -> None:
    values = {"airflow": {"scheduler": {"serviceAccount": {"name": "sched"}}}}
    assert subjects(values, release="my-airflow") == {("sched", "mlops"), ("my-airflow-triggerer", "mlops")}
    standard = {"airflow": {"useStandardNaming": True, "fullnameOverride": "wf"}}
    assert subjects(standard) == {("wf-scheduler", "mlops"), ("wf-triggerer", "mlops")}
    no_sa = {"airflow": {"scheduler": {"serviceAccount": {"create": False}}}}
    assert subjects(no_sa) == {("default", "mlops"), ("mlops-airflow-triggerer", "mlops")}
    assert subjects({"tasks": {"namespace": "mlops-jobs", "rbac": {"serviceAccountNames": ["a"]}}}) == {
        ("a", "mlops")
    }
