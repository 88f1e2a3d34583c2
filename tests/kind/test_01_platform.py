"""The platform is up: every pod Ready on the provider's platform node, the GPU node advertises 8
nvidia.com/gpu behind its taint."""

from __future__ import annotations

from typing import Any

from tests.kind import providers, support


def test_all_platform_pods_ready(k8s: support.Kube, provider: providers.Provider) -> None:
    pods = k8s.pods()
    assert pods, "no pod in namespace mlops"
    not_ready = [p["metadata"]["name"] for p in pods if support.platform_pod(p) and not support.pod_ready(p)]
    assert not not_ready, f"pods not ready: {not_ready}\n{k8s.diagnostics()}"
    names = " ".join(p["metadata"]["name"] for p in pods)
    for component in ("scheduler", "api-server", "dag-processor", "triggerer", "git-server", "mlflow", "dev-database"):
        assert component in names, f"no {component} pod in namespace mlops: {names}"
    elsewhere = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods
                 if support.platform_pod(p) and p["spec"].get("nodeName") != provider.platform_node}
    assert not elsewhere, f"platform pods not on {provider.platform_node}: {elsewhere}"


def test_gpu_node_advertises_gpus_behind_taint(k8s: support.Kube, provider: providers.Provider) -> None:
    node = k8s.node(provider.gpu_node)
    assert node["status"]["allocatable"].get("nvidia.com/gpu") == "8"
    assert node["metadata"]["labels"].get("nvidia.com/gpu.present") == "true"
    taints = {(t["key"], t.get("value"), t["effect"]) for t in node["spec"].get("taints") or []}
    assert ("nvidia.com/gpu", "present", "NoSchedule") in taints


def test_only_gpu_pods_on_the_gpu_node(k8s: support.Kube, provider: providers.Provider) -> None:
    """Only pods tolerating the GPU taint may land on the GPU node."""
    for pod in k8s.pods():
        if pod["spec"].get("nodeName") != provider.gpu_node:
            continue
        tolerations = pod["spec"].get("tolerations") or []
        assert any(t.get("key") == "nvidia.com/gpu" for t in tolerations), pod["metadata"]["name"]


def test_platform_json_matches_the_setup(platform: dict[str, Any], provider: providers.Provider) -> None:
    assert platform["release"] == "mlops" and platform["namespace"] == "mlops"
    assert platform["images"]["prefix"] == provider.image_prefix
    assert platform["gpuPool"]["slots"] == 8
    assert platform["profiles"]["gpu-1"]["gpus"] == 1
