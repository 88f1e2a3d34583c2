"""Pods of the probe image on the control-plane tier's real node (scripts/cluster/realnode.py,
tools/control-plane/nodeimage: an HTTP server and client, DNS lookups, a failing exit, file
reads and writes), as restricted as the chart's pods, and how the tests read them back."""

from __future__ import annotations

from scripts.cluster import images, realnode

TOLERATION = {"key": realnode.REAL_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}


def probe_pod(name: str, args: list[str], *, labels: dict[str, str] | None = None, restart: str = "Never",
              readiness_port: int | None = None) -> dict:
    """A pod of the probe image on the real node, as restricted as the chart's pods."""
    container = {
        "name": "probe",
        "image": images.PROBE_IMAGE,
        "imagePullPolicy": "Never",
        "args": args,
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
    }
    if readiness_port:
        container["ports"] = [{"containerPort": readiness_port}]
        container["readinessProbe"] = {"httpGet": {"path": "/", "port": readiness_port}, "periodSeconds": 1}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "restartPolicy": restart,
            "nodeSelector": {realnode.REAL_LABEL: "true"},
            "tolerations": [TOLERATION],
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 2,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
        },
    }


def pod_log(cluster, ns: str, name: str) -> str:
    """The container's log, read through the API server (which asks the kubelet)."""
    resp = cluster.core.read_namespaced_pod_log(name, ns, _preload_content=False)
    return resp.data.decode()


def finished(cluster, ns: str, name: str):
    pod = cluster.core.read_namespaced_pod(name, ns)
    return pod if pod.status.phase in ("Succeeded", "Failed") else None
