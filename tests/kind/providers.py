"""The two cluster providers of the end-to-end suite (tests/kind): where the same tests run.

- ``kind`` (`make kind-test`, a laptop with Docker): the cluster `make kind-up` made; the
  platform on the kind control plane, the "GPU node" a kind worker; model endpoints through
  ingress-nginx on 127.0.0.1:18080 (with its basic auth).
- ``realnode`` (`make test`, MLOPS_E2E_PROVIDER=realnode): the control-plane tier's cluster
  (tests/support/cluster.py: real etcd/API server/scheduler/controllers, kwok GPU nodes) and its
  real node ``mlops-real-0`` (kubelet + containerd + CNI, kube-proxy, CoreDNS). Set up here:
  the tier's registry (CNCF distribution, htpasswd + TLS, standing in for Nexus) holds the
  container tier's images; then scripts/kind-up's kind-neutral steps (Secrets, git server, DAG
  push, render, volumes, ``helm upgrade --install --wait``) run with MLOPS_KIND_PROVIDER=realnode
  and the values of tests/kind/realnode-values.yaml. No ingress controller runs there: model
  endpoints are reached through the model server's Service (kubectl port-forward).

What differs between them lives here; the tests ask the provider.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.kind import support

ENV = "MLOPS_E2E_PROVIDER"
PROVIDERS = ("kind", "realnode")
REALNODE_VALUES = Path(__file__).resolve().parent / "realnode-values.yaml"
# Images the platform pulls that no registry reachable here has: stand-ins built from this
# repository (images/standins/<name>) when the engine lacks them -> (local name, registry path,
# docker build network: Debian's archive for the database's packages, none for git-sync).
STANDINS = {
    "postgres": ("mlops.local/standin-postgres:15-bookworm", "mlops/postgres:15-bookworm", "host"),
    "git-sync": ("mlops.local/standin-git-sync:4-bookworm", "mlops/git-sync:4-bookworm", "none"),
}
GIT_SERVER_IMAGE = "mlops.local/git-server:dev"
# The registry's blobs, kept across sessions (git-ignored .cache/): an image already there with the
# same ID is not pushed again (the first push of ~2.5 GB takes minutes on a busy machine).
REGISTRY_DATA = support.REPO / ".cache" / "e2e-registry"


def name() -> str:
    value = os.environ.get(ENV, "kind")
    if value not in PROVIDERS:
        raise SystemExit(f"{ENV}={value!r}: allowed are {', '.join(PROVIDERS)}")
    return value


@dataclass
class Provider:
    name: str
    kubeconfig: str
    platform_node: str  # where the platform's pods and the cpu task pods run
    gpu_nodes: tuple[str, ...]  # nodes advertising 8 nvidia.com/gpu behind the nvidia.com/gpu taint
    training_profile: str  # the profile ml_training runs on here
    image_prefix: str
    # extra pod spec for a pod of the trainer image the tests start themselves
    pod_extra: dict[str, Any] = field(default_factory=dict)
    trainer_image: str = "mlops.local/trainer:dev"
    figures: list[str] = field(default_factory=list)

    @property
    def gpu_node(self) -> str:
        return self.gpu_nodes[0]

    @contextlib.contextmanager
    def model_endpoint(self, model: str, serving: dict[str, Any]) -> Iterator[tuple[str, dict[str, str], bool]]:
        """(base URL, headers, credential enforced there) of a served model's /invocations."""
        if self.name == "kind":
            yield support.INGRESS_HTTP, {"Host": f"{model}.{serving['domain']}"}, True
            return
        # realnode: no ingress controller; the model server's Service <model>-serving:8080 (the
        # ml_serving DAG's, dags/mlops_platform/serving.py)
        with support.port_forward(f"svc/{model}-serving", 8080, namespace=serving["namespace"]) as port:
            yield f"http://127.0.0.1:{port}", {}, False


def kind() -> Provider:
    return Provider(
        name="kind",
        kubeconfig=support.kubeconfig(),
        platform_node=support.CONTROL_PLANE,
        gpu_nodes=(support.GPU_NODE,),
        training_profile="gpu-1",
        image_prefix="mlops.local",
        pod_extra={},
    )


def _docker() -> str:
    return os.environ.get("DOCKER", "docker")


def _ensure_standin(name: str) -> str:
    """Build images/standins/<name> when the engine lacks it; its local name."""
    image, _, network = STANDINS[name]
    if subprocess.run([_docker(), "image", "inspect", image], capture_output=True).returncode == 0:
        return image
    context = support.REPO / "images" / "standins" / name
    support.log(f"building {image} (images/standins/{name})")
    proc = subprocess.run([_docker(), "build", "--network", network, "-t", image, str(context)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"docker build {image} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return image


def _push_plain(reg: Any, source: str, target: str) -> None:
    """docker tag + push of an image the chart does not name (git server, database stand-in),
    unless the registry holds it already."""
    from tests.support import registry

    subprocess.run([_docker(), "tag", source, target], check=True, capture_output=True)
    if registry.holds(reg, target, _docker()):
        return
    with reg.docker_config() as cfg:
        proc = subprocess.run([_docker(), "--config", cfg, "push", target], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"docker push {target}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def node_rss_mib(cluster_dir: Path, port_base: int) -> dict[str, float]:
    """RSS (MiB) of the real node's processes: kubelet, containerd (+ shims) and every container."""
    from scripts.cluster import realnode

    layout = realnode.Layout(cluster_dir.resolve(), port_base, Path())
    sums: dict[str, float] = {}
    for pid in realnode.cgroup_pids(layout.cgroup_name):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            rss_kib = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                           if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
        key = comm if comm in ("kubelet", "containerd", "kube-proxy", "coredns") else (
            "containerd-shim" if comm.startswith("containerd-shim") else "containers")
        sums[key] = sums.get(key, 0.0) + rss_kib / 1024
    return sums


def _clean_slate(cluster: Any) -> None:
    """Namespaces mlops and mlops-serving as kind-up finds them on a new cluster: the session's
    cluster may hold what tests/cluster left there (its releases use the same names)."""
    from kubernetes.client.exceptions import ApiException

    if cluster.helm("status", support.RELEASE, "-n", support.NAMESPACE, check=False).returncode == 0:
        cluster.helm("uninstall", support.RELEASE, "-n", support.NAMESPACE, "--wait", "--timeout", "5m")
    for ns in (support.NAMESPACE, f"{support.NAMESPACE}-serving"):
        try:
            cluster.core.delete_namespace(ns)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def gone() -> bool:
        names = {n.metadata.name for n in cluster.core.list_namespace().items}
        return not names & {support.NAMESPACE, f"{support.NAMESPACE}-serving"}

    cluster.wait_for("namespaces mlops and mlops-serving gone", gone, timeout=300, interval=2)


def _apply(cluster: Any, env: dict[str, str], obj: dict[str, Any]) -> None:
    subprocess.run(["kubectl", "--kubeconfig", str(cluster.kubeconfig), "apply", "-f", "-"], env=env,
                   input=json.dumps(obj), text=True, check=True, capture_output=True)


def _secret_value(cluster: Any, env: dict[str, str], name: str, key: str) -> str | None:
    proc = subprocess.run(["kubectl", "--kubeconfig", str(cluster.kubeconfig), "-n", support.NAMESPACE, "get",
                           "secret", name, "-o", f"go-template={{{{index .data \"{key}\" | base64decode}}}}"],
                          env=env, text=True, capture_output=True)
    return proc.stdout if proc.returncode == 0 and proc.stdout else None


@contextlib.contextmanager
def realnode(cluster: Any) -> Iterator[Provider]:
    """The platform on the tier's real node (see the module docstring); the registry stops after."""
    from scripts.cluster import realnode as rn
    from tests.support import registry

    state = cluster.state_dir / "e2e"
    state.mkdir(parents=True, exist_ok=True)
    layout = rn.Layout(cluster.state_dir.resolve(), cluster.port_base, Path())
    pki = cluster.state_dir / "pki"
    with registry.running(state / "registry", pki / "ca.crt", pki / "ca.key", layout.registry_port,
                          data_dir=REGISTRY_DATA) as reg:
        started = time.monotonic()
        pushed = registry.push_tier_images(reg, workdir=state)
        git_server = f"{reg.host}/mlops/git-server:dev"
        _push_plain(reg, GIT_SERVER_IMAGE, git_server)
        standins = {}
        for standin, (_, path, _) in STANDINS.items():
            standins[standin] = f"{reg.host}/{path}"
            _push_plain(reg, _ensure_standin(standin), standins[standin])
        pushed_s = time.monotonic() - started
        registry_values = registry.values_file(reg, state / "registry-values.yaml")
        runtime_values = state / "realnode-runtime-values.yaml"
        image = {n: dict(zip(("repository", "tag"), ref.rsplit(":", 1), strict=True)) for n, ref in standins.items()}
        copy_passwords = {  # the SimpleAuthManager's passwords file (realnode-values.yaml)
            "name": "simple-auth-passwords",
            "image": pushed["airflow"],
            "imagePullPolicy": "Always",
            "command": ["sh", "-c", "cp /secret/passwords.json /opt/airflow/simple-auth/passwords.json"],
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
            "volumeMounts": [{"name": "simple-auth", "mountPath": "/opt/airflow/simple-auth"},
                             {"name": "simple-auth-secret", "mountPath": "/secret", "readOnly": True}],
        }
        runtime_values.write_text(yaml.safe_dump({
            "devDatabase": {"image": image["postgres"]},
            "airflow": {"images": {"gitSync": {**image["git-sync"], "pullPolicy": "Always"}},
                        "apiServer": {"extraInitContainers": [copy_passwords]}}}))
        env = {**cluster.env(),
               "PATH": f"{support.REPO / 'bin'}:{os.environ['PATH']}",
               "MLOPS_KIND_PROVIDER": "realnode",
               "MLOPS_KIND_KUBECONFIG": str(cluster.kubeconfig),
               "MLOPS_KIND_STATE_DIR": str(state / "kind"),
               "MLOPS_KIND_PYTHON": os.environ.get("MLOPS_KIND_PYTHON", str(support.REPO / ".venv" / "bin" / "python")),
               "MLOPS_KIND_EXTRA_VALUES": f"{registry_values} {REALNODE_VALUES} {runtime_values}",
               "MLOPS_KIND_GIT_SERVER_IMAGE": git_server,
               "MLOPS_KIND_PULL_SECRET": "git-server-registry"}
        _clean_slate(cluster)
        cluster.namespace(support.NAMESPACE)
        _apply(cluster, env, {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                              "metadata": {"name": "git-server-registry", "namespace": support.NAMESPACE},
                              "stringData": {".dockerconfigjson": reg.dockerconfigjson()}})
        # the admin password kind-up would generate (it keeps an existing one), and the
        # SimpleAuthManager's passwords file holding it
        password = _secret_value(cluster, env, "mlops-kind-admin", "password") or secrets.token_hex(24)
        _apply(cluster, env, {"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": "mlops-kind-admin", "namespace": support.NAMESPACE,
                                           "labels": {"app.kubernetes.io/part-of": "airflow-mlops-kind"}},
                              "stringData": {"password": password}})
        _apply(cluster, env, {"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": "mlops-simple-auth", "namespace": support.NAMESPACE},
                              "stringData": {"passwords.json": json.dumps({"admin": password})}})
        started = time.monotonic()
        log = state / "kind-up.log"
        with log.open("w") as out:
            proc = subprocess.run([str(support.REPO / "scripts" / "kind-up")], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=1800)
        up_s = time.monotonic() - started
        text = log.read_text(errors="replace")
        assert proc.returncode == 0, f"scripts/kind-up (provider realnode) failed:\n{text[-12000:]}"
        install = [line for line in text.splitlines() if "helm running" in line or "STATUS" in line]
        provider = Provider(
            name="realnode",
            kubeconfig=str(cluster.kubeconfig),
            platform_node=rn.NODE_NAME,
            gpu_nodes=("kwok-gpu-0", "kwok-gpu-1"),
            training_profile="cpu",
            image_prefix=f"{reg.host}/mlops",
            trainer_image=pushed["trainer"],
            pod_extra={
                "nodeSelector": {rn.REAL_LABEL: "true"},
                "tolerations": [{"key": rn.REAL_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
                "imagePullSecrets": [{"name": "mlops-registry"}],
            },
        )
        provider.figures.append(f"images pushed to the tier registry in {pushed_s:.1f}s")
        provider.figures.append(f"kind-up (provider realnode: secrets, git server, DAG push, render, volumes, "
                                f"helm upgrade --install --wait, every pod Ready) in {up_s:.1f}s")
        provider.figures.extend(line.strip() for line in install[-2:])
        rss = node_rss_mib(cluster.state_dir, cluster.port_base)
        provider.figures.append("real node RSS after install (MiB): " + ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(rss.items())) + f"; total {sum(rss.values()):.0f}")
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        try:
            yield provider
        finally:
            # the platform's containers stopped by the kubelet while the node lives, not by
            # cluster-down; the session's later tests find the namespaces as a new cluster has them
            _clean_slate(cluster)
