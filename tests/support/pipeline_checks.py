"""End-to-end checks of task pods shared by the backends: tests/kind (real containers on kind) and
tests/cluster (kwok nodes: no containers, the API server's and the scheduler's decisions).

Every function takes a pod as the API serves it (a plain dict in camelCase, as `kubectl get -o
json` prints it or `ApiClient().sanitize_for_serialization(V1Pod)` returns it) and raises
AssertionError with the pod's name and what differs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

GPU = "nvidia.com/gpu"


def name(pod: dict[str, Any]) -> str:
    return pod["metadata"]["name"]


def gpu_limit(pod: dict[str, Any]) -> int:
    """nvidia.com/gpu limit summed over the pod's containers (0 when none)."""
    total = 0
    for c in pod["spec"]["containers"]:
        total += int(((c.get("resources") or {}).get("limits") or {}).get(GPU, 0))
    return total


def assert_placed(pod: dict[str, Any], gpus: int, gpu_nodes: Collection[str]) -> None:
    """A GPU pod asks exactly its profile's GPUs and runs on a GPU node; a CPU pod asks none and
    never lands on a GPU node."""
    node = pod["spec"].get("nodeName")
    assert gpu_limit(pod) == gpus, f"{name(pod)}: {GPU} limit {gpu_limit(pod)}, the profile has {gpus}"
    if gpus:
        assert node in gpu_nodes, f"{name(pod)} ({gpus} GPUs) placed on {node}, not on a GPU node {sorted(gpu_nodes)}"
    else:
        assert node not in gpu_nodes, f"CPU pod {name(pod)} placed on the GPU node {node}"


def assert_identified(pod: dict[str, Any], dag_id: str, task_id: str) -> None:
    """The operator's labels say which DAG, task, run and try the pod belongs to."""
    labels = pod["metadata"].get("labels") or {}
    assert labels.get("dag_id") == dag_id and labels.get("task_id") == task_id, (name(pod), labels)
    assert labels.get("run_id") and labels.get("try_number", "").isdigit(), (name(pod), labels)
    assert labels.get("app.kubernetes.io/part-of") == "airflow-mlops", (name(pod), labels)


def assert_platform_mounts(pod: dict[str, Any], platform: dict[str, Any], workspace_subpath: str | None = None) -> None:
    """From the chart's pod template: the registry pull secret, the run workspace mounted with
    subPathExpr of MLOPS_WORKSPACE_SUBPATH (= workspace_subpath when given), the datasets volume
    read-only."""
    spec = pod["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "base"]
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    registry = platform.get("registry") or {}
    if registry.get("pullSecret"):
        assert {"name": registry["pullSecret"]} in (spec.get("imagePullSecrets") or []), (name(pod), spec.get("imagePullSecrets"))
    ws = platform.get("workspace") or {}
    if ws.get("enabled"):
        mount = mounts.get(ws["mountPath"])
        assert mount and mount.get("subPathExpr") == f"$({ws['subPathEnv']})", (name(pod), mount)
        if workspace_subpath is not None:
            assert env.get(ws["subPathEnv"]) == workspace_subpath, (name(pod), env.get(ws["subPathEnv"]))
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        claim = (volumes[mount["name"]].get("persistentVolumeClaim") or {}).get("claimName")
        assert claim == ws["claimName"], (name(pod), claim)
    ds = platform.get("datasets") or {}
    if ds.get("enabled"):
        mount = mounts.get(ds["mountPath"])
        assert mount and mount.get("readOnly") is True, f"{name(pod)}: datasets at {ds['mountPath']} not read-only: {mount}"


def assert_tries(pods: Iterable[dict[str, Any]], phases: list[str]) -> None:
    """The pods of one task, by try_number label, went to these final phases (try 1 first)."""
    by_try = sorted(pods, key=lambda p: int(p["metadata"]["labels"]["try_number"]))
    got = [p["status"].get("phase") for p in by_try]
    assert got == phases, f"phases by try: {got}, expected {phases} ({[name(p) for p in by_try]})"


def assert_retried(pods: Iterable[dict[str, Any]], final_try: int) -> None:
    """A task that succeeded on try `final_try` after its earlier tries did not: it was retried
    (final_try >= 2), one pod per try was created (try_number labels 1..final_try), and no pod of
    an earlier try Succeeded (it failed, or was deleted while it ran)."""
    by_try: dict[int, list[str]] = {}
    for p in pods:
        by_try.setdefault(int(p["metadata"]["labels"]["try_number"]), []).append(p["status"].get("phase"))
    assert final_try >= 2, f"the task succeeded on try {final_try}: it was never retried (pods by try: {by_try})"
    assert sorted(by_try) == list(range(1, final_try + 1)), f"pods by try: {by_try}, the task's last try is {final_try}"
    early = {t: phases for t, phases in by_try.items() if t < final_try and "Succeeded" in phases}
    assert not early, f"a pod of an earlier try Succeeded, yet the task was retried: {early}"


KEEP_ANNOTATION = "helm.sh/resource-policy"


def kept_claims(claims: Iterable[dict[str, Any]], release: str) -> list[dict[str, Any]]:
    """The PersistentVolumeClaims of `release` that `helm uninstall` keeps (resource-policy keep)."""
    out = []
    for c in claims:
        ann = c["metadata"].get("annotations") or {}
        if ann.get(KEEP_ANNOTATION) == "keep" and ann.get("meta.helm.sh/release-name") == release:
            out.append(c)
    return out


def assert_claims_kept(before: Iterable[dict[str, Any]], after: Iterable[dict[str, Any]]) -> None:
    """After `helm uninstall`, every claim of `before` is still there: the same object (uid), Bound."""
    now = {(c["metadata"].get("namespace"), c["metadata"]["name"]): c for c in after}
    for c in before:
        key = (c["metadata"].get("namespace"), c["metadata"]["name"])
        assert key in now, f"claim {key[0]}/{key[1]} was deleted by helm uninstall"
        assert now[key]["metadata"]["uid"] == c["metadata"]["uid"], f"claim {key[0]}/{key[1]} was re-created"
        assert (now[key].get("status") or {}).get("phase") == "Bound", (key, now[key].get("status"))
