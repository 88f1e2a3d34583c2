"""The chart's GPU-packing scheduler (gpuScheduler) placing GPU pods on the control plane.

The chart is rendered with `gpuScheduler.enabled=true`; its ServiceAccount, Role, RoleBindings,
ClusterRoleBindings and configuration ConfigMap are created in the cluster. The Deployment's
container itself is not run (kwok nodes run no containers): the real kube-scheduler binary of
the tier (./bin/kube-scheduler, the cluster's version) stands in for it as a host process, with
the command of the chart's container and the KubeSchedulerConfiguration of the chart's ConfigMap
(only `clientConnection.kubeconfig` added, since the process is not in a pod), authenticated by a
TokenRequest token of the chart's ServiceAccount. So the chart's RBAC alone authorizes it: a
permission missing from the chart shows up as a `forbidden` in its log or as a Lease it cannot
take (both fail the test), and a second test runs it without the chart's Lease Role to show that.

Two kwok GPU nodes of the test's own (8 GPUs each, a label of their own, the GPU taint; deleted
afterwards, so other tests count the tier's GPUs as before) receive a 1-, a 2- and a 4-GPU pod,
one after another, then an 8-GPU pod. With the chart's schedulerName the small pods share one
node and the 8-GPU pod gets the other, whole. The same pods under a kube-scheduler with its own
defaults (LeastAllocated, what a cluster whose administrator configured nothing runs; another
process of the same binary) are spread over both nodes and the 8-GPU pod stays Pending.
Every process is stopped by its PID at the end.
"""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.support.cluster import BIN
from tests.support.helm import render_chart
from tests.support.net import free_port

NS = "gpu-packing"
RELEASE = "packing"
SCHEDULER = f"{RELEASE}-gpu-packing"  # the chart's default: <release>-gpu-packing
SPREAD = "default-spread"  # the kube-scheduler's own defaults, for the contrast
NODE_LABEL = "mlops.test/gpu-packing"
NODES = ("kwok-pack-0", "kwok-pack-1")
GPU = "nvidia.com/gpu"
COMPONENT = "gpu-scheduler"


def chart_objects(cluster) -> list[dict]:
    """The chart's scheduler objects, rendered for the tier's API server version (as helm install does)."""
    from kubernetes import client

    version = client.VersionApi(cluster.api).get_code().git_version
    objects = render_chart(values={"gpuScheduler": {"enabled": True}}, release=RELEASE, namespace=NS,
                           kube_version=version, validate_versions=["1.35"])
    return [o for o in objects if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == COMPONENT]


def one(objects: list[dict], kind: str) -> dict:
    (obj,) = [o for o in objects if o["kind"] == kind]
    return obj


def node_body(name: str, cidr: str) -> dict:
    res = {"cpu": "64", "memory": "512Gi", "pods": "110", GPU: "8"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok",
                                NODE_LABEL: "true"}},
        "spec": {"podCIDR": cidr, "taints": [{"key": GPU, "value": "present", "effect": "NoSchedule"}]},
        "status": {"allocatable": res, "capacity": res,
                   "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake",
                                "kubeProxyVersion": "fake", "containerRuntimeVersion": "kwok", "kernelVersion": "kwok",
                                "osImage": "kwok", "machineID": "", "systemUUID": "", "bootID": ""}},
    }


def gpu_pod(name: str, gpus: int, scheduler: str) -> dict:
    """A long-running pod (kwok keeps restartPolicy Always pods Running) sized like the chart's GPU
    profiles: per GPU 4 CPUs and 16Gi requested."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"mlops.test/gpus": str(gpus)}},
        "spec": {
            "schedulerName": scheduler,
            "nodeSelector": {NODE_LABEL: "true"},
            "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "train", "image": "trainer:0.1.0",
                "resources": {"requests": {"cpu": str(4 * gpus), "memory": f"{16 * gpus}Gi"},
                              "limits": {GPU: str(gpus)}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


def kubeconfig_with_token(cluster, token: str, path: Path) -> Path:
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    (c,) = admin["clusters"]
    ca = c["cluster"].get("certificate-authority-data")
    if not ca:
        ca = base64.b64encode(Path(c["cluster"]["certificate-authority"]).read_bytes()).decode()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "tier", "cluster": {"server": cluster.server, "certificate-authority-data": ca}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "tier", "user": "sa"}}],
        "current-context": "sa",
    }))
    return path


def sa_token(cluster, name: str) -> str:
    from kubernetes import client

    req = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
    return cluster.core.create_namespaced_service_account_token(name, NS, req).status.token


class Scheduler:
    """A kube-scheduler host process (started by this test, stopped by its PID)."""

    def __init__(self, proc: subprocess.Popen, log: Path, port: int) -> None:
        self.proc, self.log, self.port = proc, log, port

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def healthy(self) -> bool:
        out = subprocess.run(["curl", "-sk", "--max-time", "3", f"https://127.0.0.1:{self.port}/healthz"],
                             capture_output=True, text=True)
        return out.stdout.strip() == "ok"


@contextmanager
def scheduler_process(command: list[str], config: dict, kubeconfig: Path, work: Path) -> Iterator[Scheduler]:
    """Run `command` (the chart container's) with the config written locally, bound to 127.0.0.1."""
    work.mkdir(parents=True, exist_ok=True)
    config = {**config, "clientConnection": {"kubeconfig": str(kubeconfig)}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    args = [str(BIN / "kube-scheduler")]
    for arg in command[1:]:
        if arg.startswith("--config="):
            arg = f"--config={work / 'config.yaml'}"
        elif arg.startswith("--secure-port="):
            arg = f"--secure-port={port}"
        elif arg.startswith("--cert-dir="):
            arg = f"--cert-dir={work / 'certs'}"
        args.append(arg)
    args += ["--bind-address=127.0.0.1", f"--authentication-kubeconfig={kubeconfig}",
             f"--authorization-kubeconfig={kubeconfig}", "--v=2"]
    log = work / "kube-scheduler.log"
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield Scheduler(proc, log, port)
    finally:
        proc.terminate()  # by its PID
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def packing(cluster, tmp_path_factory):
    """The chart's scheduler objects (no Deployment) and two GPU nodes of the test; removed afterwards."""
    from kubernetes import utils
    from kubernetes.client.exceptions import ApiException

    cluster.namespace(NS)
    objects = chart_objects(cluster)
    created = []
    for obj in objects:
        if obj["kind"] == "Deployment":
            continue
        body = {k: v for k, v in obj.items() if k != "__source__"}
        utils.create_from_dict(cluster.api, body)
        created.append(body)
    for i, name in enumerate(NODES):
        cluster.core.create_node(node_body(name, f"10.244.{20 + i}.0/24"))
    cluster.wait_for("the packing nodes Ready", lambda: all(
        any(c.type == "Ready" and c.status == "True" for c in (cluster.core.read_node(n).status.conditions or []))
        for n in NODES), timeout=60)
    try:
        yield objects, tmp_path_factory.mktemp("gpu-packing")
    finally:
        for p in cluster.core.list_namespaced_pod(NS).items:
            cluster.core.delete_namespaced_pod(p.metadata.name, NS, grace_period_seconds=0)
        for name in NODES:
            cluster.core.delete_node(name)
        for body in created:
            kind, meta = body["kind"], body["metadata"]
            try:
                if kind == "ClusterRoleBinding":
                    cluster.rbac.delete_cluster_role_binding(meta["name"])
                elif kind == "RoleBinding" and meta["namespace"] == "kube-system":
                    cluster.rbac.delete_namespaced_role_binding(meta["name"], "kube-system")
            except ApiException:
                pass


def place(cluster, scheduler: str, prefix: str) -> dict[str, str | None]:
    """1-, 2-, 4-GPU pods one after another (each bound before the next), then an 8-GPU pod.
    Returns pod -> node (None: not placed within the wait)."""
    placed: dict[str, str | None] = {}
    for gpus in (1, 2, 4, 8):
        name = f"{prefix}-gpu-{gpus}"
        cluster.core.create_namespaced_pod(NS, gpu_pod(name, gpus, scheduler))

        def node(name=name):
            return cluster.core.read_namespaced_pod(name, NS).spec.node_name

        try:
            placed[name] = cluster.wait_for(f"{name} bound", node, timeout=20 if gpus == 8 else 60)
        except AssertionError:
            placed[name] = None
    return placed


def delete_pods(cluster, names) -> None:
    for n in names:
        cluster.core.delete_namespaced_pod(n, NS, grace_period_seconds=0)
    cluster.wait_for("the pods gone", lambda: not [p for p in cluster.core.list_namespaced_pod(NS).items
                                                   if p.metadata.name in names], timeout=60)


def unschedulable_message(cluster, name: str) -> str:
    pod = cluster.core.read_namespaced_pod(name, NS)
    return "; ".join(c.message or "" for c in (pod.status.conditions or []) if c.reason == "Unschedulable")


def test_the_charts_scheduler_packs_gpu_pods_with_the_charts_rbac(cluster, packing, cluster_report) -> None:
    objects, work = packing
    sa = one(objects, "ServiceAccount")["metadata"]["name"]
    config = yaml.safe_load(one(objects, "ConfigMap")["data"]["config.yaml"])
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert config["profiles"][0]["schedulerName"] == SCHEDULER
    # the image the chart would run is the version of the binary that stands in for it
    binary = subprocess.run([str(BIN / "kube-scheduler"), "--version"], capture_output=True, text=True).stdout.split()[-1]
    assert container["image"] == f"registry.k8s.io/kube-scheduler:{binary}", (container["image"], binary)
    kc = kubeconfig_with_token(cluster, sa_token(cluster, sa), work / "sa.kubeconfig")
    admin_kc = cluster.kubeconfig

    with scheduler_process(container["command"], config, kc, work / "chart") as sched:
        started = time.monotonic()
        cluster.wait_for("the chart's scheduler healthy on its secure port", sched.healthy, timeout=60)

        def lease_holder():
            from kubernetes import client

            return client.CoordinationV1Api(cluster.api).read_namespaced_lease(SCHEDULER, NS).spec.holder_identity

        try:
            holder = cluster.wait_for("the chart's scheduler holds its Lease", lease_holder, timeout=60)
        except AssertionError as exc:  # a permission missing from the chart: say which
            refused = [line for line in sched.text().splitlines() if "forbidden" in line.lower()]
            raise AssertionError(f"{exc}\nrefused by RBAC:\n" + "\n".join(refused[:10])) from None
        ready_s = time.monotonic() - started
        t0 = time.monotonic()
        packed = place(cluster, SCHEDULER, "packed")
        packed_s = time.monotonic() - t0
        log = sched.text()
    assert sched.proc.returncode is not None  # stopped
    forbidden = [line for line in log.splitlines() if "forbidden" in line.lower()]
    assert not forbidden, "the chart's RBAC refused the scheduler something:\n" + "\n".join(forbidden[:10])
    assert None not in packed.values(), f"not placed: {packed}\n{cluster.diagnostics(NS)}"
    small = {packed[f"packed-gpu-{g}"] for g in (1, 2, 4)}
    assert len(small) == 1, f"the 1/2/4-GPU pods were spread: {packed}"
    assert packed["packed-gpu-8"] not in small, packed
    delete_pods(cluster, list(packed))

    # the contrast: the same pods under a kube-scheduler with its own defaults
    default_config = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                      "leaderElection": {"leaderElect": False}, "profiles": [{"schedulerName": SPREAD}]}
    with scheduler_process(container["command"], default_config, admin_kc, work / "default") as spread_sched:
        cluster.wait_for("the default-configured scheduler healthy", spread_sched.healthy, timeout=60)
        spread = place(cluster, SPREAD, "spread")
        waiting = unschedulable_message(cluster, "spread-gpu-8") if spread["spread-gpu-8"] is None else ""
    delete_pods(cluster, list(spread))
    spread_small = {spread[f"spread-gpu-{g}"] for g in (1, 2, 4)}
    assert len(spread_small) == 2 and spread["spread-gpu-8"] is None, \
        f"the default scheduler was expected to spread the small pods and leave no whole node: {spread}"
    assert "Insufficient nvidia.com/gpu" in waiting, waiting

    cluster_report.extend([
        f"gpu packing (the chart's gpuScheduler configuration and RBAC in ./bin/kube-scheduler {binary}, the chart's "
        f"image tag, as a host process; healthy and Lease held by {holder!r} {ready_s:.1f}s after start):",
        f"  {SCHEDULER}: 1/2/4-GPU pods on {small.pop()}, 8-GPU pod on {packed['packed-gpu-8']} "
        f"(4 pods placed in {packed_s:.1f}s)",
        f"  kube-scheduler defaults: 1/2/4-GPU pods on {sorted(spread_small)}, 8-GPU pod Pending ({waiting})",
    ])


def test_without_the_charts_lease_role_the_scheduler_cannot_lead(cluster, packing) -> None:
    """The chart's Role for its Lease is needed: a ServiceAccount with the chart's other bindings
    but not that one is refused the Lease, and its scheduler never schedules."""
    from kubernetes import client, utils

    objects, work = packing
    config = yaml.safe_load(one(objects, "ConfigMap")["data"]["config.yaml"])
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    sa = "gpu-scheduler-no-lease"
    cluster.core.create_namespaced_service_account(NS, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=sa)))
    names = []
    for obj in objects:
        if obj["kind"] not in ("ClusterRoleBinding", "RoleBinding") or obj["roleRef"]["kind"] == "Role" \
                and obj["metadata"]["namespace"] == NS:
            continue
        body = {k: v for k, v in obj.items() if k != "__source__"}
        body = {**body, "metadata": {**body["metadata"], "name": f"{sa}-{len(names)}"},
                "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": NS}]}
        utils.create_from_dict(cluster.api, body)
        names.append((body["kind"], body["metadata"].get("namespace"), body["metadata"]["name"]))
    assert len(names) == 3, names  # kube-scheduler, volume-scheduler, authentication reader
    kc = kubeconfig_with_token(cluster, sa_token(cluster, sa), work / "no-lease.kubeconfig")
    try:
        with scheduler_process(container["command"], config, kc, work / "no-lease") as sched:
            cluster.wait_for("a refused Lease in the log", lambda: "forbidden" in sched.text().lower()
                             and "lease" in sched.text().lower(), timeout=60)
            cluster.core.create_namespaced_pod(NS, gpu_pod("no-lease-gpu-1", 1, SCHEDULER))
            time.sleep(5)
            node = cluster.core.read_namespaced_pod("no-lease-gpu-1", NS).spec.node_name
        assert node is None, f"a scheduler without its Lease placed a pod on {node}"
    finally:
        for kind, ns, name in names:
            if kind == "ClusterRoleBinding":
                cluster.rbac.delete_cluster_role_binding(name)
            else:
                cluster.rbac.delete_namespaced_role_binding(name, ns)
