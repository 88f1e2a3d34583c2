"""Task namespace RBAC: exactly what the KubernetesPodOperator needs, nothing cluster-wide."""

from __future__ import annotations

from tests.support.helm import find, render_chart


def rbac(values: dict, release: str = "mlops") -> list[dict]:
    return render_chart(values=values, release=release, namespace="mlops")


def test_nothing_when_tasks_run_in_the_release_namespace() -> None:
    objects = rbac({})
    assert find(objects, "Role") == [] and find(objects, "RoleBinding") == []


def test_role_verbs_in_the_task_namespace() -> None:
    objects = rbac({"tasks": {"namespace": "mlops-jobs"}})
    (role,) = find(objects, "Role")
    assert role["metadata"]["namespace"] == "mlops-jobs"
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): sorted(r["verbs"]) for r in role["rules"]}
    assert rules == {
        (("",), ("pods",)): sorted(["create", "get", "list", "watch", "delete", "patch"]),
        (("",), ("pods/log",)): ["get"],
        (("",), ("pods/exec",)): ["create", "get"],
        (("",), ("events",)): ["get", "list", "watch"],
    }
    assert not any(o["kind"].startswith("Cluster") for o in objects)


def test_without_exec() -> None:
    (role,) = find(rbac({"tasks": {"namespace": "jobs", "rbac": {"podsExec": False}}}), "Role")
    assert all("pods/exec" not in r["resources"] for r in role["rules"])


def test_binding_subjects_are_the_official_chart_service_accounts() -> None:
    (rb,) = find(rbac({"tasks": {"namespace": "mlops-jobs"}}), "RoleBinding")
    assert rb["metadata"]["namespace"] == "mlops-jobs"
    assert rb["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "mlops-airflow-mlops-task-launcher",
    }
    subjects = {(s["name"], s["namespace"]) for s in rb["subjects"]}
    assert subjects == {
        ("mlops-airflow-scheduler", "mlops"),
        ("mlops-airflow-worker", "mlops"),
        ("mlops-airflow-triggerer", "mlops"),
    }


def test_binding_follows_official_overrides() -> None:
    values = {
        "tasks": {"namespace": "jobs"},
        "airflow": {"scheduler": {"serviceAccount": {"name": "sched"}}},
    }
    (rb,) = find(rbac(values, release="my-airflow"), "RoleBinding")
    names = sorted(s["name"] for s in rb["subjects"])
    # a release containing "airflow" is the official chart's full name
    assert names == ["my-airflow-triggerer", "my-airflow-worker", "sched"]
    (rb,) = find(
        rbac({"tasks": {"namespace": "jobs", "rbac": {"serviceAccountNames": ["a"]}}}), "RoleBinding"
    )
    assert [s["name"] for s in rb["subjects"]] == ["a"]
