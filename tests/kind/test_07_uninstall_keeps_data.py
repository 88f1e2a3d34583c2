"""`helm uninstall`: the workspace and dataset claims and their data are still there.

Runs last (it removes the release); `make kind-up` (or `make kind-test`) installs it again and
adopts the kept claims.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from typing import Any

import yaml

from tests.kind import providers, support
from tests.support import pipeline_checks as checks


def _kept_claims(k8s: support.Kube) -> list[dict[str, Any]]:
    return checks.kept_claims(k8s.kubectl("get pvc", namespace=support.NAMESPACE), support.RELEASE)


def _run_pod(k8s: support.Kube, provider: providers.Provider, claim: str, script: str) -> str:
    """Run a short restricted pod (the trainer image: on the nodes on kind, from the registry with
    the pull secret on the real node) mounting `claim`."""
    name = f"kind-test-{uuid.uuid4().hex[:8]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": support.NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "kind-test"},
        },
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "c",
                    "image": provider.trainer_image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", script],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [{"name": "claim", "mountPath": "/mnt/claim"}],
                }
            ],
            "volumes": [{"name": "claim", "persistentVolumeClaim": {"claimName": claim}}],
            **provider.pod_extra,
        },
    }
    k8s.kubectl("apply", std_input=yaml.safe_dump(pod), output_format="")
    try:

        def done() -> Any:
            phase = k8s.kubectl(f"get pod {name}", namespace=support.NAMESPACE)["status"].get("phase")
            return phase if phase in ("Succeeded", "Failed") else None

        phase = support.wait_for(f"pod {name} on claim {claim}", done, timeout=180)
        logs = k8s.kubectl(f"logs {name}", namespace=support.NAMESPACE, output_format="")
        assert phase == "Succeeded", f"{name}: {phase}\n{logs}"
        return logs.strip()
    finally:
        k8s.kubectl(f"delete pod {name}", namespace=support.NAMESPACE, output_format="")


def test_uninstall_keeps_claims_and_data(
    k8s: support.Kube, platform: dict[str, Any], provider: providers.Provider
) -> None:
    claims = _kept_claims(k8s)
    names = sorted(c["metadata"]["name"] for c in claims)
    assert any("workspace" in n for n in names), f"no kept workspace claim among {names}"
    if platform.get("datasets", {}).get("enabled"):
        # values/kind.yaml leaves NFS off (kind nodes have no NFS client); checked when enabled.
        assert any("nfs" in n or "dataset" in n for n in names), f"no kept NFS claim among {names}"
    token = uuid.uuid4().hex
    for name in names:
        _run_pod(k8s, provider, name, f"open('/mnt/claim/kind-test-marker', 'w').write('{token}')")

    proc = subprocess.run(
        [
            "helm",
            "uninstall",
            support.RELEASE,
            "-n",
            support.NAMESPACE,
            "--kubeconfig",
            support.kubeconfig(),
            "--wait",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    support.log(f"helm uninstall: {proc.stdout.strip()}")
    time.sleep(5)

    # the same check as tests/cluster/test_gpu_capacity.py (tests/support/pipeline_checks.py)
    checks.assert_claims_kept(claims, k8s.kubectl("get pvc", namespace=support.NAMESPACE))
    for name in names:  # kind only: real volumes, the data written before is still there
        data = _run_pod(k8s, provider, name, "print(open('/mnt/claim/kind-test-marker').read())")
        assert data == token, f"{name}: marker is {data!r}, expected {token!r}"
        support.log(f"claim {name}: kept, data intact")
    support.log("the release is uninstalled: `make kind-up` installs it again (the kept claims are adopted)")
