"""The tier's real node (scripts/cluster/realnode.py): real containers, Services, DNS, logs, exec.

Pods here run on ``mlops-real-0`` (kubelet + containerd + runc + bridge CNI, kube-proxy,
CoreDNS), not on kwok: the probe image (tools/control-plane/nodeimage) is a real program whose
exit codes, HTTP answers and DNS lookups are what the assertions see. One test starts its
own control plane and real node, kills them as a crash would, recovers with a second
``cluster-up``, stops with ``cluster-down`` and checks that the host is as it was found
(processes, mounts, KUBE-* iptables chains, ipsets, sysctls, fixed paths, cgroups), with kube-router
enforcing NetworkPolicies in the killed run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from scripts.cluster import images, realnode
from tests.support.cluster import free_port_base, run_script, script_env
from tests.support.probe_pods import finished, pod_log, probe_pod

pytestmark = pytest.mark.skipif(os.environ.get("CLUSTER_REAL_NODE", "1") == "0",
                                reason="CLUSTER_REAL_NODE=0: kwok nodes only")

@pytest.fixture(scope="module")
def real_ns(cluster):
    # restricted: Pod Security admission checks the pods as it checks the chart's
    return cluster.namespace(f"real-node-{uuid.uuid4().hex[:6]}",
                             labels={"pod-security.kubernetes.io/enforce": "restricted"})


def test_real_node_is_ready_tainted_and_says_what_it_is(cluster, cluster_report):
    node = cluster.core.read_node(realnode.NODE_NAME)
    ready = {c.type: c.status for c in node.status.conditions}
    assert ready["Ready"] == "True", ready
    info = node.status.node_info
    assert info.kubelet_version == "v1.35.4"
    assert info.container_runtime_version.startswith("containerd://"), info.container_runtime_version
    assert node.metadata.labels[realnode.REAL_LABEL] == "true"
    assert [(t.key, t.value, t.effect) for t in node.spec.taints or []] == [(realnode.REAL_LABEL, "true", "NoSchedule")]
    addresses = {a.type: a.address for a in node.status.addresses}
    assert addresses["InternalIP"] == realnode.NODE_IP
    # the kwok nodes are still there, simulated
    kwok = [n.metadata.name for n in cluster.core.list_node().items
            if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake"]
    assert len(kwok) == 4, kwok
    assert "real:        node mlops-real-0" in cluster.up_output, cluster.up_output
    assert "NetworkPolicies: enforced while kube-router runs" in cluster.up_output, cluster.up_output
    assert ("not real:    NFS volumes" in cluster.up_output) is not KERNEL_HAS_NFS, cluster.up_output
    cluster_report.append(f"real node: {realnode.NODE_NAME} {info.kubelet_version} {info.container_runtime_version}"
                          f" kernel {info.kernel_version}")


def test_service_dns_logs_and_exec_between_real_pods(cluster, real_ns, cluster_report):
    """A server pod behind a Service (ready by its real readiness probe); a client pod resolves
    the Service through CoreDNS and reaches it through kube-proxy; its log reaches the API server
    (API server -> kubelet through the egress proxy); exec runs in the server's container."""
    ns = real_ns
    started = time.monotonic()
    cluster.core.create_namespaced_pod(ns, probe_pod("echo", ["serve", ":8080", "hello from a real pod"],
                                                     labels={"app": "echo"}, restart="Always", readiness_port=8080))
    cluster.core.create_namespaced_service(ns, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
        "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": 8080}]}})

    def echo_ready():
        pod = cluster.core.read_namespaced_pod("echo", ns)
        return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])

    cluster.wait_for("the echo pod Ready by its readiness probe", echo_ready, timeout=60)
    ready_s = time.monotonic() - started
    cluster.core.create_namespaced_pod(ns, probe_pod("client", ["get", f"http://echo.{ns}.svc.cluster.local/", "30"]))
    cluster.core.create_namespaced_pod(ns, probe_pod("lookup", ["lookup", "kubernetes.default.svc.cluster.local"]))
    client = cluster.wait_for("the client pod finished", lambda: finished(cluster, ns, "client"), timeout=90)
    log = pod_log(cluster, ns, "client")
    assert client.status.phase == "Succeeded", (log, cluster.diagnostics(ns))
    assert log.strip() == "hello from a real pod"
    lookup = cluster.wait_for("the lookup pod finished", lambda: finished(cluster, ns, "lookup"), timeout=60)
    lookup_log = pod_log(cluster, ns, "lookup")
    assert lookup.status.phase == "Succeeded", lookup_log
    assert lookup_log.split() == ["10.96.0.1"]
    flow_s = time.monotonic() - started

    from kubernetes.stream import stream

    out = stream(cluster.core.connect_get_namespaced_pod_exec, "echo", ns,
                 command=["/nodeimage", "get", "http://127.0.0.1:8080/", "5"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out.strip() == "hello from a real pod"
    cluster_report.append(f"real node: server Ready by its probe in {ready_s:.1f}s; Service + DNS flow in {flow_s:.1f}s")


def test_a_failing_container_fails_for_real_with_its_log(cluster, real_ns):
    ns = real_ns
    cluster.core.create_namespaced_pod(ns, probe_pod("failing", ["fail", "3", "the real image failed"]))
    pod = cluster.wait_for("the failing pod finished", lambda: finished(cluster, ns, "failing"), timeout=60)
    assert pod.status.phase == "Failed"
    state = pod.status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (3, "Error")
    assert pod_log(cluster, ns, "failing").strip() == "the real image failed"


def test_a_pod_that_breaks_the_restricted_profile_is_refused_before_any_node(cluster, real_ns):
    from kubernetes.client.exceptions import ApiException

    pod = probe_pod("root", ["fail", "0", "x"])
    pod["spec"]["securityContext"] = {"runAsUser": 0}
    with pytest.raises(ApiException) as e:
        cluster.core.create_namespaced_pod(real_ns, pod)
    assert e.value.status == 403 and "runAsNonRoot" in e.value.body


def _node_netns_iptables(state_dir: Path) -> str:
    hold = (state_dir / "run" / "node-hold.pid").read_text().strip()
    return subprocess.run(["nsenter", f"--target={hold}", "--net", "iptables-save"], capture_output=True,
                          text=True, check=True).stdout


def test_the_node_changes_only_its_own_namespaces(cluster):
    """While the node runs: its KUBE-* chains are in its network namespace, not the host's; the
    kernel tunables the kubelet sets are its own files; its fixed paths are not the host's."""
    node_rules = _node_netns_iptables(cluster.state_dir)
    assert ":KUBE-SERVICES" in node_rules and ":KUBE-FIREWALL" in node_rules
    state = realnode.host_state()
    assert state["kube_chains"] == [], state["kube_chains"]
    hold = (cluster.state_dir / "run" / "node-hold.pid").read_text().strip()
    inside = subprocess.run(["nsenter", f"--target={hold}", "--mount", "cat", "/proc/sys/vm/overcommit_memory"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert inside == "1", "the kubelet sets vm.overcommit_memory=1 on start"
    assert state["sysctls"]["vm.overcommit_memory"] == Path("/proc/sys/vm/overcommit_memory").read_text().strip()
    assert not [m for m in Path("/proc/self/mounts").read_text().splitlines() if str(cluster.state_dir) in m]
    assert not {"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni"} & set(state["fixed_paths"])


def _kill_tier(state_dir: Path) -> list[int]:
    """SIGKILL every process of the state directory and its node, as a killed make would leave
    nothing to clean up after it."""
    layout = realnode.Layout(state_dir.resolve(), 0, Path())
    pids = set(realnode.cgroup_pids(layout.cgroup_name))
    marker = str(state_dir.resolve()) + "/"
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    pids.add(int(proc.name))
            except OSError:
                pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return sorted(pids)


def test_killed_run_recovers_and_the_host_is_left_as_found(tmp_path, cluster_report):
    before = realnode.host_state()
    state_dir = Path("/tmp") / f"mlops-rn-{uuid.uuid4().hex[:6]}"  # short: unix socket paths
    base = free_port_base()
    try:
        first = run_script("cluster-up", state_dir, base, timeout=300)
        assert first.returncode == 0, first.stdout + first.stderr
        # kube-router too: its chains and ipsets must go with the killed node's namespace
        policy = subprocess.run([sys.executable, "-m", "scripts.cluster.realnode", "policy-on"], cwd=realnode.REPO,
                                env=script_env(state_dir, base), capture_output=True, text=True, timeout=120)
        assert policy.returncode == 0, policy.stdout + policy.stderr
        killed = _kill_tier(state_dir)
        assert len(killed) >= 10, killed  # control plane, forwarder, containerd, kubelet, kube-proxy, CoreDNS, ...
        time.sleep(0.5)
        started = time.monotonic()
        second = run_script("cluster-up", state_dir, base, timeout=300)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "stale state" in second.stdout
        recovered = time.monotonic() - started
    finally:
        down = run_script("cluster-down", state_dir, base, timeout=120)
        if down.returncode == 0:
            shutil.rmtree(state_dir, ignore_errors=True)  # its logs (and nothing else: checked below)
    assert down.returncode == 0, down.stdout + down.stderr
    after = realnode.host_state()
    layout = realnode.Layout(state_dir.resolve(), base, Path())
    assert realnode.cgroup_pids(layout.cgroup_name) == set()
    assert after["sysctls"] == before["sysctls"]
    assert after["kube_chains"] == before["kube_chains"] == []
    assert after["ipsets"] == before["ipsets"], (before["ipsets"], after["ipsets"])
    # the kubelet's and CNI's fixed paths; /run/containerd and /opt/containerd are left out:
    # any Docker engine of this machine (scripts/docker-engine) creates them too
    kubelet_paths = {"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni", "/etc/cni/net.d"}
    assert set(after["fixed_paths"]) & kubelet_paths == set(before["fixed_paths"]) & kubelet_paths
    assert not [c for c in after["node_cgroups"] if layout.cgroup_name in c]
    assert not [m for m in Path("/proc/self/mounts").read_text().splitlines() if str(state_dir) in m]
    assert not state_dir.exists()
    cluster_report.append(f"real node: killed run recovered by a second cluster-up in {recovered:.1f}s; "
                          f"host as found: {json.dumps(after['sysctls'])}, no KUBE-* chain, no mount, no cgroup")


def _connect(socket_path: Path, target: str) -> bytes:
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(socket_path))
        s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        return s.recv(200)


def test_the_api_servers_egress_proxy_reaches_the_node_and_nothing_else(cluster):
    sock = cluster.state_dir / "run" / "node-egress.sock"
    assert oct(sock.stat().st_mode & 0o777) == "0o600"
    assert _connect(sock, f"{realnode.NODE_IP}:10250").startswith(b"HTTP/1.1 200")  # the kubelet
    assert _connect(sock, "10.96.0.10:53").startswith(b"HTTP/1.1 200")  # a Service, through kube-proxy
    assert _connect(sock, "192.0.2.1:443").startswith(b"HTTP/1.1 403")  # anywhere else: refused
    assert _connect(sock, "not-an-ip:443").startswith(b"HTTP/1.1 400")


def test_the_node_pulls_from_the_tier_registry_with_the_pull_secret_and_not_without(cluster, real_ns, tmp_path,
                                                                                     cluster_report):
    """The tier's registry (CNCF distribution, htpasswd + TLS from the tier's CA, on
    CLUSTER_PORT_BASE + 5): containerd on the node verifies its certificate with the CA (hosts.toml)
    and pulls with the pod's imagePullSecret; without the secret the registry answers 401 and the
    pod waits in ErrImagePull/ImagePullBackOff."""
    from tests.support import registry

    layout = realnode.Layout(cluster.state_dir, cluster.port_base, Path())
    pki = cluster.state_dir / "pki"
    with registry.running(tmp_path / "registry", pki / "ca.crt", pki / "ca.key", layout.registry_port) as reg:
        # an image ID of its own: the imported probe image stays usable by the tests after this one
        images.push(realnode.REPO / "bin" / "nodeimage", images.PROBE_IMAGE, reg.url, reg.auth(), reg.ca_cert,
                    "mlops/probe:pulled", labels={"mlops.test/pulled": "true"})
        ref = f"{reg.host}/mlops/probe:pulled"
        cluster.core.create_namespaced_secret(real_ns, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mlops-registry"},
            "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": __import__("base64").b64encode(
                reg.dockerconfigjson().encode()).decode()}})
        with_secret = probe_pod("pulled", ["fail", "0", "pulled with the secret"])
        with_secret["spec"]["imagePullSecrets"] = [{"name": "mlops-registry"}]
        without = probe_pod("anonymous", ["fail", "0", "must not run"])
        for pod in (with_secret, without):
            pod["spec"]["containers"][0].update(image=ref, imagePullPolicy="Always")
        started = time.monotonic()
        cluster.core.create_namespaced_pod(real_ns, with_secret)
        cluster.core.create_namespaced_pod(real_ns, without)
        pod = cluster.wait_for("the pod with the pull secret finished",
                               lambda: finished(cluster, real_ns, "pulled"), timeout=90)
        assert pod.status.phase == "Succeeded", cluster.diagnostics(real_ns)
        assert pod_log(cluster, real_ns, "pulled").strip() == "pulled with the secret"
        pulled_s = time.monotonic() - started

        def refused():
            p = cluster.core.read_namespaced_pod("anonymous", real_ns)
            waiting = (p.status.container_statuses or [None])[0]
            waiting = waiting and waiting.state.waiting
            return waiting if waiting and waiting.reason in ("ErrImagePull", "ImagePullBackOff") else None

        cluster.wait_for("the pod without the pull secret refused", refused, timeout=60)
        events = cluster.core.list_namespaced_event(real_ns, field_selector="involvedObject.name=anonymous").items
        messages = " ".join(e.message or "" for e in events)
        assert "401 Unauthorized" in messages, messages
        assert cluster.core.read_namespaced_pod("anonymous", real_ns).status.phase == "Pending"
        cluster.core.delete_namespaced_pod("anonymous", real_ns, grace_period_seconds=0)
    cluster_report.append(f"real node: pulled {ref} with the pull secret and ran it in {pulled_s:.1f}s; "
                          "without the secret: 401, ErrImagePull")


# --- the data sets volume (storage.nfs) ------------------------------------------------------
# An NFS client in the kernel is what the kubelet's NFS volume needs (`mount -t nfs`). This
# machine's kernel has none, nor an NFS server: no nfs/nfs4/nfsd in /proc/filesystems, no
# CONFIG_NFS_FS/CONFIG_NFSD in its configuration, no modules to load. So the chart's NFS volume is
# shown failing for that reason, and a local volume stands in for it.
KERNEL_HAS_NFS = "\tnfs" in Path("/proc/filesystems").read_text() or "\tnfs4" in Path("/proc/filesystems").read_text()
DATASET = "sepal_length,sepal_width,species\n5.1,3.5,setosa\n"


def datasets_objects(ns: str, release: str, nfs: dict) -> tuple[dict, dict, dict, dict]:
    """The chart's datasets PersistentVolume and claim (claim in the tasks namespace ns) and the
    datasets volume and mount of its cpu pod template, rendered with storage.nfs."""
    from tests.support.helm import find, parse_documents, render_chart

    objects = render_chart(values={"storage": {"nfs": {"enabled": True, **nfs}}, "tasks": {"namespace": ns}},
                           release=release, namespace=f"{ns}-release", validate=False)
    (pv,) = find(objects, "PersistentVolume")
    (pvc,) = [o for o in find(objects, "PersistentVolumeClaim") if o["metadata"]["name"].endswith("-datasets")]
    (cm,) = [o for o in find(objects, "ConfigMap") if o["metadata"]["name"].endswith("-pod-templates")]
    template = parse_documents(cm["data"]["cpu.yaml"])[0]["spec"]
    (volume,) = [v for v in template["volumes"] if v["name"] == "datasets"]
    (mount,) = [m for m in template["containers"][0]["volumeMounts"] if m["name"] == "datasets"]
    strip = lambda o: {k: v for k, v in o.items() if k != "__source__"}  # noqa: E731
    return strip(pv), strip(pvc), volume, mount


def datasets_pod(name: str, volume: dict, mount: dict) -> dict:
    pod = probe_pod(name, ["serve", ":8080", "datasets"], restart="Always")
    pod["spec"]["volumes"] = [volume]
    pod["spec"]["containers"][0]["volumeMounts"] = [mount]
    return pod


@pytest.mark.machine_may_differ
@pytest.mark.skipif(KERNEL_HAS_NFS, reason="this kernel has an NFS client: the NFS volume could mount here")
def test_the_charts_nfs_datasets_volume_fails_to_mount_here_for_want_of_a_kernel_nfs_client(cluster, real_ns,
                                                                                          cluster_report):
    """The kubelet really tries the chart's NFS volume (nfsvers=4.1, read-only) and the kernel
    refuses the file system type: why the next test's volume is a stand-in."""
    pv, pvc, volume, mount = datasets_objects(real_ns, "nfs", {"server": realnode.NODE_IP, "path": "/datasets"})
    assert pv["spec"]["nfs"] == {"server": realnode.NODE_IP, "path": "/datasets", "readOnly": True}
    cluster.core.create_persistent_volume(pv)
    try:
        cluster.core.create_namespaced_persistent_volume_claim(real_ns, pvc)
        cluster.core.create_namespaced_pod(real_ns, datasets_pod("nfs-datasets", volume, mount))

        def failed_mount():
            events = cluster.core.list_namespaced_event(real_ns, field_selector="involvedObject.name=nfs-datasets").items
            return [e.message for e in events if e.reason == "FailedMount"]

        messages = cluster.wait_for("the kubelet's FailedMount of the NFS volume", failed_mount, timeout=90)
        refused = [m for m in messages if "unknown filesystem type 'nfs'" in m]
        assert refused, messages
        cluster_report.append("real node: the chart's NFS datasets volume, kubelet FailedMount: "
                              + " ".join(refused[0].split("Output:")[-1].split()))
        assert cluster.core.read_namespaced_pod("nfs-datasets", real_ns).status.phase == "Pending"
    finally:
        cluster.core.delete_namespaced_pod("nfs-datasets", real_ns, grace_period_seconds=0)
        cluster.core.delete_namespaced_persistent_volume_claim(pvc["metadata"]["name"], real_ns)
        cluster.core.delete_persistent_volume(pv["metadata"]["name"])


def test_the_datasets_stand_in_local_volume_is_read_by_a_task_pod_and_read_only(cluster, real_ns, cluster_report):
    """STAND-IN for the NFS server (see above): the chart's datasets PersistentVolume and claim,
    with a `local` volume on the real node in place of the NFS source; the pod mounts it as the
    chart's cpu pod template does (the claim, read-only, at /data), reads a file through it, and
    cannot write."""
    pv, pvc, volume, mount = datasets_objects(real_ns, "standin", {"server": "nfs.invalid", "path": "/datasets"})
    export = cluster.state_dir / "node" / "datasets-standin"
    export.mkdir(parents=True, exist_ok=True)
    export.chmod(0o755)
    (export / "iris.csv").write_text(DATASET)
    del pv["spec"]["nfs"], pv["spec"]["mountOptions"]
    pv["spec"]["local"] = {"path": str(export)}
    pv["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [realnode.NODE_NAME]}]}]}}
    assert mount == {"name": "datasets", "mountPath": "/data", "readOnly": True}
    assert volume["persistentVolumeClaim"]["readOnly"] is True
    cluster.core.create_persistent_volume(pv)
    started = time.monotonic()
    try:
        cluster.core.create_namespaced_persistent_volume_claim(real_ns, pvc)
        cluster.core.create_namespaced_pod(real_ns, datasets_pod("datasets", volume, mount))

        def running():
            return cluster.core.read_namespaced_pod("datasets", real_ns).status.phase == "Running"

        cluster.wait_for("the pod with the datasets volume Running", running, timeout=90)
        from kubernetes.stream import stream

        def run(*argv: str) -> str:
            return stream(cluster.core.connect_get_namespaced_pod_exec, "datasets", real_ns, command=["/nodeimage", *argv],
                          stderr=True, stdin=False, stdout=True, tty=False)

        assert run("cat", "/data/iris.csv") == DATASET
        assert "read-only file system" in run("write", "/data/new.csv", "x")
        assert not (export / "new.csv").exists()
        mounted_s = time.monotonic() - started
    finally:
        cluster.core.delete_namespaced_pod("datasets", real_ns, grace_period_seconds=0)
        cluster.core.delete_namespaced_persistent_volume_claim(pvc["metadata"]["name"], real_ns)
        cluster.core.delete_persistent_volume(pv["metadata"]["name"])
    cluster_report.append(f"real node: datasets volume = local stand-in (no NFS in this kernel); read through the "
                          f"chart's claim, read-only, {mounted_s:.1f}s from apply")
