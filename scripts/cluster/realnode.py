"""The real node of the control-plane tier: kubelet, containerd, CNI, kube-proxy and CoreDNS.

Beside the kwok nodes (which run no container), ``make cluster-up`` joins one real node,
``mlops-real-0``, to the control plane: Debian's containerd, runc and CNI plugins, and kubelet,
kube-proxy (the control plane's tools module) and CoreDNS (its own tools module), built into
``bin``. Pods scheduled there run real containers; Services work through kube-proxy; DNS
through CoreDNS at the ``kube-dns`` Service (10.96.0.10).

Confinement (the host is left as found, on success and on failure):

- Every process of the node runs in a network and mount namespace of its own, created by the
  ``hold`` process (``unshare``). In that mount namespace /var/lib, /var/log and /run are the
  node's own directories (``<state>/node/{var-lib,var-log,run}``), so the kubelet's and
  containerd's fixed paths (/var/lib/kubelet, /var/log/containers, /var/lib/cni,
  /run/containerd) and the kubelet's bind mount of its root directory never reach the host; the
  sysctls the kubelet sets on start (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops)
  are files of the node there, and the host's values stay as they are.
- The node's network: a bridge ``cni0`` on 10.244.10.0/24 that exists only inside the node's
  namespace (node IP 10.244.10.1, the pods' gateway); no interface leads out, nothing is
  masqueraded or forwarded beyond it. Its iptables chains (kubelet's KUBE-FIREWALL, kube-proxy's
  KUBE-SERVICES, ...) are the namespace's.
- The control plane is reached through netns_forward.py: ``127.0.0.1:<api port>`` inside the
  node's namespace (and 10.244.10.1:<api port>, the ``kubernetes`` Service's endpoint) forwards
  to the host's API server; the API server reaches the kubelet through that process's CONNECT
  proxy on a unix socket (its ``cluster`` egress selection).
- NetworkPolicies: kube-router (its own tools module), run only as a network policy controller
  (``--run-firewall``; no routing, no service proxy), enforces them with iptables chains and ipsets
  of the node's network namespace (Debian's ``ipset``; ipsets, like chains, belong to a network
  namespace). ``start_policy_controller`` / ``stop_policy_controller`` (``policy-on`` /
  ``policy-off``) start and stop it; stopping removes its chains and ipsets, and the namespace dies
  with the node in any case. It is not started with the node: the node's CoreDNS
  is a process of the node, not a pod, so the chart's DNS egress rule (pods labelled
  k8s-app=kube-dns in kube-system) does not admit it and isolated pods could not resolve names.
- Every process joins the cgroup ``mlops-node-<id>`` of each cgroup v1 hierarchy, and the
  kubelet's ``cgroupRoot`` is that cgroup, so ``down`` finds every process of the node (the
  containers included) by its cgroup, stops them by PID, and removes the cgroups. Killed runs
  are cleaned the same way by the next ``up`` or ``down``.

Usage (from the repository root; scripts/cluster-up and scripts/cluster-down call it)::

    python3 -m scripts.cluster.realnode up|down|check|host-state
    python3 -m scripts.cluster.realnode policy-on|policy-off  # kube-router enforcing NetworkPolicies
    python3 -m scripts.cluster.realnode hold NODE_DIR   # internal: the namespaces' first process

Environment: CLUSTER_DIR, CLUSTER_PORT_BASE, CLUSTER_BIN as scripts/cluster-lib.sh;
CLUSTER_NODE_READY_TIMEOUT (seconds, default 90).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from scripts.cluster import images

NODE_NAME = "mlops-real-0"
NODE_CIDR = "10.244.10.0/24"
NODE_IP = "10.244.10.1"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_CIDR = "10.244.0.0/16"
DNS_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
REAL_LABEL = "mlops.test/real-node"
# Only pods that tolerate this taint (and select the label) run on the real node: the tier's
# other tests keep kwok's simulated pod lifecycle.
TAINT = {"key": REAL_LABEL, "value": "true", "effect": "NoSchedule"}
BRIDGE = "cni0"
CNI_BIN = Path("/usr/lib/cni")
# Sysctls the kubelet sets when it starts (protectKernelDefaults false): in the node's mount
# namespace they are the node's own files, with the host's values as they were.
KERNEL_TUNABLES = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
# Debian packages of the node's runtime: command or path -> package.
PACKAGES = {"containerd": "containerd", "runc": "runc", str(CNI_BIN / "bridge"): "containernetworking-plugins",
            "ipset": "ipset"}
BINARIES = ("kubelet", "kube-proxy", "coredns", "nodeimage", "kube-router")
# What kube-router's policy controller makes in the node's network namespace (and must not leave
# anywhere): filter chains KUBE-ROUTER-{INPUT,FORWARD,OUTPUT}, KUBE-POD-FW-*, KUBE-NWPLCY-*, and
# ipsets KUBE-SRC-*, KUBE-DST-* (IPv4; inet6: prefixes when IPv6 is on).
POLICY_CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")
POLICY_IPSET_PREFIXES = ("KUBE-", "inet6:KUBE-")
SERVICES = ("kubelet", "kube-proxy", "coredns", "kube-router", "forward")
CGROUP_ROOT = Path("/sys/fs/cgroup")
FIXED_PATHS = ("/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni", "/run/containerd",
               "/var/lib/containerd", "/opt/containerd", "/etc/cni/net.d")
REPO = Path(__file__).resolve().parents[2]
# The tier's registry (scripts/cluster/registry.py) listens on CLUSTER_PORT_BASE + 5 of the host;
# the node's containerd reaches it at the same 127.0.0.1:<port> and trusts the tier's CA for it.
REGISTRY_PORT_OFFSET = 5


class NodeError(RuntimeError):
    """The real node could not start; the message says what to do."""


def say(msg: str) -> None:
    print(f"[real node] {msg}", flush=True)


# --- layout ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    cluster_dir: Path
    port_base: int
    bin_dir: Path

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Layout:
        env = os.environ if env is None else env
        cluster_dir = Path(env.get("CLUSTER_DIR") or REPO / ".cluster" / "local").resolve()
        return cls(cluster_dir, int(env.get("CLUSTER_PORT_BASE", "26440")), Path(env.get("CLUSTER_BIN") or REPO / "bin"))

    @property
    def api_port(self) -> int:
        return self.port_base

    @property
    def registry_port(self) -> int:
        return self.port_base + REGISTRY_PORT_OFFSET

    @property
    def node_dir(self) -> Path:
        return self.cluster_dir / "node"

    @property
    def pki(self) -> Path:
        return self.cluster_dir / "pki"

    @property
    def logs(self) -> Path:
        return self.cluster_dir / "logs"

    @property
    def run(self) -> Path:
        return self.cluster_dir / "run"

    @property
    def egress_socket(self) -> Path:
        return self.run / "node-egress.sock"

    @property
    def containerd_socket(self) -> Path:
        # /run/containerd of the node's mount namespace is <node>/run/containerd on the host
        return self.node_dir / "run" / "containerd" / "containerd.sock"

    @property
    def cgroup_name(self) -> str:
        return "mlops-node-" + hashlib.sha256(str(self.cluster_dir).encode()).hexdigest()[:10]

    def pidfile(self, name: str) -> Path:
        return self.run / f"node-{name}.pid"


# --- host state -----------------------------------------------------------------------------
def host_state() -> dict[str, object]:
    """What the node must leave as it found: sysctls, KUBE-* chains, mounts, fixed paths, cgroups."""
    sysctls = {}
    for t in KERNEL_TUNABLES:
        try:
            sysctls[t.replace("/", ".")] = Path("/proc/sys", t).read_text().strip()
        except OSError:
            sysctls[t.replace("/", ".")] = None
    try:
        rules = subprocess.run(["iptables-save"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        rules = ""
    chains = sorted({w.lstrip(":") for line in rules.splitlines() for w in line.split()[:2] if "KUBE-" in w})
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    return {
        "ipsets": ipsets(),
        "sysctls": sysctls,
        "kube_chains": chains,
        "mounts": len(mounts),
        "fixed_paths": sorted(p for p in FIXED_PATHS if os.path.lexists(p)),
        "node_cgroups": sorted(str(p) for p in CGROUP_ROOT.glob("*/mlops-node-*")),
        "netns_mounts": sorted(m.split()[1] for m in mounts if " nsfs " in m),
    }


def ipsets(netns_pid: int | None = None) -> list[str]:
    """The ipset names of the host's network namespace (or of the one of netns_pid); [] without ipset."""
    prefix = ["nsenter", f"--target={netns_pid}", "--net"] if netns_pid else []
    try:
        out = subprocess.run([*prefix, "ipset", "list", "-n"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return sorted(out.stdout.split()) if out.returncode == 0 else []


# --- cgroups --------------------------------------------------------------------------------
def hierarchies() -> list[Path]:
    """The cgroup hierarchies: every v1 controller's, and the hybrid layout's v2 "unified" one
    (runc creates the containers' cgroups there too); cpu,cpuacct style links skipped."""
    out = []
    for p in sorted(CGROUP_ROOT.iterdir()):
        if p.is_symlink() or not p.is_dir():
            continue
        if (p / "cgroup.procs").exists():
            out.append(p)
    return out


def make_cgroups(name: str) -> None:
    for h in hierarchies():
        d = h / name
        d.mkdir(exist_ok=True)
        if h.name == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not (d / f).read_text().strip():
                    (d / f).write_text((h / f).read_text())


def join_cgroups(name: str) -> None:
    """Move the calling process into the node's cgroups (a preexec_fn: before exec)."""
    for h in hierarchies():
        procs = h / name / "cgroup.procs"
        if procs.exists():
            procs.write_text("0")


def cgroup_pids(name: str) -> set[int]:
    pids: set[int] = set()
    for h in hierarchies():
        top = h / name
        if not top.is_dir():
            continue
        for d, _, _ in os.walk(top):
            try:
                pids.update(int(x) for x in Path(d, "cgroup.procs").read_text().split())
            except OSError:
                pass
    return pids


def remove_cgroups(name: str) -> list[str]:
    """rmdir the node's cgroups, deepest first; the ones left (still busy) are returned."""
    left = []
    for h in hierarchies():
        top = h / name
        if not top.is_dir():
            continue
        for d, _, _ in sorted(os.walk(top), key=lambda w: -len(Path(w[0]).parts)):
            try:
                os.rmdir(d)
            except OSError:
                left.append(d)
    return left


# --- processes ------------------------------------------------------------------------------
def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    left = {p for p in pids if _alive(p)}
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = {p for p in left if _alive(p)}
    return left


def stop_processes(layout: Layout, timeout: float = 10) -> None:
    """Every process of the node's cgroup: the node's services first (SIGTERM, then SIGKILL),
    then containerd and the containers (SIGKILL: nothing of them is kept)."""
    name = layout.cgroup_name
    services = {}
    for svc in SERVICES:
        try:
            pid = int(layout.pidfile(svc).read_text())
        except (OSError, ValueError):
            continue
        if pid in cgroup_pids(name):
            services[pid] = svc
    for pid, svc in services.items():
        say(f"stopping {svc} (pid {pid})")
        os.kill(pid, signal.SIGTERM)
    for pid in _wait_gone(set(services), timeout):
        say(f"{services[pid]} (pid {pid}) did not stop within {timeout:.0f}s: SIGKILL")
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        pids = {p for p in cgroup_pids(name) if _alive(p)}
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _wait_gone(pids, 2)
    left = {p: _comm(p) for p in cgroup_pids(name) if _alive(p)}
    if left:
        raise NodeError(f"processes of the real node still alive after SIGKILL: {left}")


def down(layout: Layout, quiet: bool = False) -> None:
    """Stop the node and remove what it made (its logs are kept). Safe when nothing runs."""
    name = layout.cgroup_name
    if not any((h / name).exists() for h in hierarchies()) and not layout.node_dir.exists():
        if not quiet:
            say(f"nothing runs in {layout.node_dir}")
        return
    stop_processes(layout)
    # a killed container leaves its cgroup a moment after it is gone from cgroup.procs
    deadline = time.monotonic() + 15
    while (left := remove_cgroups(name)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        raise NodeError(f"cgroups of the real node could not be removed: {left}")
    for svc in ("hold", "containerd", *SERVICES):
        layout.pidfile(svc).unlink(missing_ok=True)
    layout.egress_socket.unlink(missing_ok=True)
    # The namespaces died with their last process: what was mounted in them is gone, the
    # directories below are plain files of the host now.
    if layout.node_dir.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(layout.node_dir)], check=False)
    if layout.node_dir.exists():
        raise NodeError(f"could not remove {layout.node_dir}")
    if not quiet:
        say("stopped; its processes, cgroups, namespaces and state are gone")


# --- the namespaces' first process ----------------------------------------------------------
def hold(node_dir: Path) -> int:
    """Runs as the first process of the node's fresh network and mount namespaces (unshare):
    masks the fixed paths and kernel tunables, sets up the network, then waits for SIGTERM."""

    def sh(*cmd: str) -> None:
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)

    sh("mount", "--make-rprivate", "/")
    for host_dir, own in (("/var/lib", "var-lib"), ("/var/log", "var-log"), ("/run", "run")):
        (node_dir / own).mkdir(parents=True, exist_ok=True)
        sh("mount", "--bind", str(node_dir / own), host_dir)
    tunables = node_dir / "sysctl"
    tunables.mkdir(exist_ok=True)
    for t in KERNEL_TUNABLES:
        f = tunables / t.replace("/", ".")
        f.write_text(Path("/proc/sys", t).read_text())
        sh("mount", "--bind", str(f), f"/proc/sys/{t}")
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    # the node's own connections to Service IPs (the API server's egress to a Service) are
    # DNAT'ed by kube-proxy after the route lookup: the Service range needs a route
    sh("ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP)
    # Within the namespace: routing between the pods and the node (Services are DNAT'ed here).
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
    (node_dir / "hold.ready").write_text(str(os.getpid()))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


# --- configuration files --------------------------------------------------------------------
def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def sign(layout: Layout, name: str, subject: str, ext: str) -> None:
    """A key and a certificate signed by the tier's CA, in <state>/pki."""
    pki = layout.pki
    key, csr, crt = pki / f"{name}.key", pki / f"{name}.csr", pki / f"{name}.crt"
    if crt.exists() and key.exists():
        return
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    extfile = pki / f"{name}.ext"
    extfile.write_text(ext)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"),
             "-CAcreateserial", "-sha256", "-days", "365", "-extfile", str(extfile), "-out", str(crt))
    csr.unlink()
    extfile.unlink()
    key.chmod(0o600)


CLIENT_EXT = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"


def kubeconfig(layout: Layout, user: str, path: Path) -> None:
    import base64

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "node",
        "clusters": [{"name": "mlops-local", "cluster": {
            # the node's own 127.0.0.1: netns_forward.py forwards to the host's API server
            "server": f"https://127.0.0.1:{layout.api_port}",
            "certificate-authority-data": b64(layout.pki / "ca.crt")}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(layout.pki / f"{user}.crt"),
                                          "client-key-data": b64(layout.pki / f"{user}.key")}}],
        "contexts": [{"name": "node", "context": {"cluster": "mlops-local", "user": user}}],
    }, indent=1))
    path.chmod(0o600)


def containerd_config(layout: Layout) -> str:
    n = layout.node_dir
    return f"""version = 2
# The node's containerd: default paths, which are the node's own directories in its mount
# namespace (/var/lib/containerd -> {n}/var-lib/containerd, /run/containerd -> {n}/run/containerd).
root = "/var/lib/containerd"
state = "/run/containerd"
oom_score = 0

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "{n}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{images.PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # root here lacks CAP_SYS_RESOURCE: lowering a container's oom_score_adj below ours fails
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{n}/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{n}/certs.d"
"""


def cni_config() -> dict:
    return {
        "cniVersion": "0.4.0",
        "name": "mlops-node",
        "plugins": [{
            "type": "bridge",
            "bridge": BRIDGE,
            # cni0 (10.244.10.1) exists only in the node's namespace: the pods' gateway to the
            # node (Services, DNS, the API server's forwarder); no route leads further.
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": NODE_CIDR, "rangeStart": "10.244.10.10",
                                                          "gateway": NODE_IP}]],
                     "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/var/lib/cni/networks"},
        }],
    }


def kubelet_config(layout: Layout) -> dict:
    pki = layout.pki
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": "/" + layout.cgroup_name,
        # this machine: cgroup v1 controllers, swap allowed, no CAP_SYS_RESOURCE
        "failCgroupV1": False,
        "failSwapOn": False,
        "oomScoreAdj": 0,
        "clusterDNS": [DNS_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": str(layout.node_dir / "resolv.conf"),
        "registerWithTaints": [TAINT],
        "serializeImagePulls": False,
        # a shared machine's disk and memory: evict only when nearly nothing is left; images
        # imported locally are never garbage-collected
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "maxPods": 50,
        "shutdownGracePeriod": "0s",
        "logging": {"verbosity": 1},
    }


def kube_proxy_config(layout: Layout) -> dict:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(layout.node_dir / "kube-proxy.kubeconfig")},
        "hostnameOverride": NODE_NAME,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "mode": "iptables",
        "clusterCIDR": CLUSTER_CIDR,
        "nodePortAddresses": [f"{NODE_IP}/32"],
        # every Service connection is masqueraded to the node: replies return through the
        # namespace's conntrack without br_netfilter
        "iptables": {"masqueradeAll": True},
        # zero: kube-proxy leaves the kernel's (machine-wide) conntrack settings alone
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def corefile(layout: Layout) -> str:
    return f""".:53 {{
    bind {NODE_IP}
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {layout.node_dir / "coredns.kubeconfig"}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
    loadbalance
}}
"""


# --- the API --------------------------------------------------------------------------------
class Api:
    def __init__(self, layout: Layout):
        self.base = f"https://127.0.0.1:{layout.api_port}"
        ctx = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
        ctx.load_cert_chain(str(layout.pki / "admin.crt"), str(layout.pki / "admin.key"))
        self.ctx = ctx

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def create(self, path: str, body: dict) -> None:
        """Create the object unless it exists (a Service's taken cluster IP answers 422, not 409)."""
        code, _ = self.request("GET", f"{path}/{body['metadata']['name']}")
        if code == 200:
            return
        code, out = self.request("POST", path, body)
        if code not in (201, 409):
            raise NodeError(f"POST {path} answered HTTP {code}: {out.get('message', out)}")


def cluster_objects(api: Api, layout: Layout) -> None:
    """What a cluster's add-ons would create: CoreDNS's RBAC, the kube-dns Service and its
    endpoints (CoreDNS on the node), the kubernetes Service's endpoints (the forwarder)."""
    api.create("/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:coredns"},
        "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                   "verbs": ["list", "watch"]},
                  {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]})
    api.create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "system:coredns"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:coredns"}]})
    # kube-router's informers (it watches all of them whichever controllers run)
    api.create("/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:kube-router"},
        "rules": [{"apiGroups": [""], "resources": ["pods", "namespaces", "nodes", "services", "endpoints"],
                   "verbs": ["get", "list", "watch"]},
                  {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
                  {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["list", "watch"]}]})
    api.create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "system:kube-router"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:kube-router"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:kube-router"}]})
    api.create("/api/v1/namespaces/kube-system/services", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {"clusterIP": DNS_IP, "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                               {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}})
    slice_meta = {"endpointslice.kubernetes.io/managed-by": "mlops-tier.realnode"}
    api.create("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kube-dns-node", "namespace": "kube-system",
                     "labels": {"kubernetes.io/service-name": "kube-dns", **slice_meta}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}, "nodeName": NODE_NAME}],
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]})
    api.create("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes-node", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes", **slice_meta}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": layout.api_port, "protocol": "TCP"}]})


def node_ready(api: Api) -> bool:
    code, node = api.request("GET", f"/api/v1/nodes/{NODE_NAME}")
    if code != 200:
        return False
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))
    # and the node lifecycle controller has lifted node.kubernetes.io/not-ready: pods can be placed
    lifecycle = [t for t in node.get("spec", {}).get("taints", []) if t["key"].startswith("node.kubernetes.io/")]
    return ready and not lifecycle


# --- up -------------------------------------------------------------------------------------
def preflight(layout: Layout) -> None:
    if os.geteuid() != 0:
        raise NodeError("the real node needs root (namespaces, mounts, cgroups): run as root or set CLUSTER_REAL_NODE=0")
    pairs = [f"{cmd}={pkg}" for cmd, pkg in PACKAGES.items()]
    subprocess.run([str(REPO / "scripts" / "ensure-apt-packages"), *pairs], check=False)
    missing = [pkg for cmd, pkg in PACKAGES.items()
               if not (os.access(cmd, os.X_OK) if cmd.startswith("/") else _which(cmd))]
    if missing:
        raise NodeError(f"Debian packages {' '.join(missing)} are missing (apt-get install {' '.join(missing)}), "
                        "or set CLUSTER_REAL_NODE=0 for kwok nodes only")
    absent = [b for b in BINARIES if not os.access(layout.bin_dir / b, os.X_OK)]
    if absent:
        raise NodeError(f"{' '.join(absent)} missing in {layout.bin_dir}: run `make cluster-tools`")
    for tool in ("unshare", "nsenter", "ip", "iptables", "mount"):
        if not _which(tool):
            raise NodeError(f"{tool} is required (Debian: util-linux, iproute2, iptables)")
    if not (CGROUP_ROOT / "pids" / "cgroup.procs").exists():
        raise NodeError(f"no cgroup v1 pids hierarchy under {CGROUP_ROOT}: the real node expects this machine's cgroup v1 layout")
    if len(str(layout.egress_socket)) > 100:
        raise NodeError(f"{layout.egress_socket} is longer than a unix socket path may be: use a shorter CLUSTER_DIR")


def _which(cmd: str) -> str | None:
    from shutil import which

    return which(cmd) or (f"/usr/sbin/{cmd}" if os.access(f"/usr/sbin/{cmd}", os.X_OK) else None)


def _start(layout: Layout, name: str, argv: list[str], netns: bool = True) -> int:
    """Start a process of the node (in its namespaces unless netns is False), in its cgroups."""
    hold_pid = int(layout.pidfile("hold").read_text())
    if netns:
        argv = ["nsenter", f"--target={hold_pid}", "--net", "--mount", "--", *argv]
    log = open(layout.logs / f"node-{name}.log", "ab")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=lambda: join_cgroups(layout.cgroup_name),
                            cwd=layout.node_dir, env={**os.environ, "PYTHONPATH": str(REPO)})
    log.close()
    layout.pidfile(name).write_text(str(proc.pid))
    return proc.pid


def _wait(what: str, check, timeout: float, log: Path | None = None, pid: int | None = None) -> float:
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if pid is not None and not _alive(pid):
            tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log and log.exists() else []
            raise NodeError(f"{what}: the process exited; see {log}:\n  " + "\n  ".join(tail))
        if time.monotonic() - start > timeout:
            raise NodeError(f"{what}: not ready within {timeout:.0f}s; see {log or layout_logs_hint}")
        time.sleep(0.2)


layout_logs_hint = "the node's logs in <CLUSTER_DIR>/logs/node-*.log"


def up(layout: Layout) -> dict[str, float]:
    """Start the node (after cleaning any leftover of an earlier run); returns timings."""
    t0 = time.monotonic()
    preflight(layout)
    down(layout, quiet=True)
    n = layout.node_dir
    for d in (n, n / "cni", n / "certs.d", n / "opt"):
        d.mkdir(parents=True, exist_ok=True)
    layout.logs.mkdir(parents=True, exist_ok=True)
    layout.run.mkdir(parents=True, exist_ok=True)

    # certificates: the kubelet (client: Node authorizer; serving: for the node IP), kube-proxy,
    # CoreDNS; the API server's kubelet client certificate is made by cluster-up
    sign(layout, "kubelet", f"/O=system:nodes/CN=system:node:{NODE_NAME}", CLIENT_EXT)
    sign(layout, "kubelet-serving", f"/CN={NODE_NAME}", "basicConstraints=critical,CA:FALSE\n"
         "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
         f"subjectAltName=IP:{NODE_IP},DNS:{NODE_NAME}\n")
    sign(layout, "kube-proxy", "/CN=system:kube-proxy", CLIENT_EXT)
    sign(layout, "coredns", "/CN=system:coredns", CLIENT_EXT)
    sign(layout, "kube-router", "/CN=system:kube-router", CLIENT_EXT)
    for user, file in (("kubelet", "kubelet.kubeconfig"), ("kube-proxy", "kube-proxy.kubeconfig"),
                       ("coredns", "coredns.kubeconfig"), ("kube-router", "kube-router.kubeconfig")):
        kubeconfig(layout, user, n / file)
    (n / "containerd.toml").write_text(containerd_config(layout))
    registry_host = f"127.0.0.1:{layout.registry_port}"
    (n / "certs.d" / registry_host).mkdir(parents=True, exist_ok=True)
    (n / "certs.d" / registry_host / "hosts.toml").write_text(
        f'server = "https://{registry_host}"\n\n[host."https://{registry_host}"]\n'
        f'  capabilities = ["pull", "resolve"]\n  ca = "{layout.pki / "ca.crt"}"\n')
    (n / "cni" / "10-mlops-node.conflist").write_text(json.dumps(cni_config(), indent=1))
    (n / "kubelet.yaml").write_text(json.dumps(kubelet_config(layout), indent=1))
    (n / "kube-proxy.yaml").write_text(json.dumps(kube_proxy_config(layout), indent=1))
    (n / "Corefile").write_text(corefile(layout))
    # the pods' resolv.conf gets the cluster DNS from the kubelet; nothing of the host's
    (n / "resolv.conf").write_text("")
    archive = n / "images.tar"
    images.write_archive(layout.bin_dir / "nodeimage", archive)

    # namespaces and cgroups
    make_cgroups(layout.cgroup_name)
    log = open(layout.logs / "node-hold.log", "ab")
    hold_proc = subprocess.Popen(
        ["unshare", "--net", "--mount", "--propagation", "private", "--",
         sys.executable, "-m", "scripts.cluster.realnode", "hold", str(n)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=lambda: join_cgroups(layout.cgroup_name), cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    log.close()
    layout.pidfile("hold").write_text(str(hold_proc.pid))
    _wait("the node's namespaces", lambda: (n / "hold.ready").exists(), 15, layout.logs / "node-hold.log",
          hold_proc.pid)
    say(f"namespaces: network + mount of pid {hold_proc.pid}; bridge {BRIDGE} {NODE_IP}/24 inside only; "
        f"cgroup {layout.cgroup_name}")

    fwd = _start(layout, "forward", [
        sys.executable, "-m", "scripts.cluster.netns_forward", f"--netns=/proc/{hold_proc.pid}/ns/net",
        f"--listen=127.0.0.1:{layout.api_port}={layout.api_port}",
        f"--listen={NODE_IP}:{layout.api_port}={layout.api_port}",
        f"--listen=127.0.0.1:{layout.registry_port}={layout.registry_port}",
        f"--connect-proxy={layout.egress_socket}", f"--node-cidr={NODE_CIDR}", f"--service-cidr={SERVICE_CIDR}",
        f"--state-dir={layout.cluster_dir}"], netns=False)
    _wait("the API forwarder", layout.egress_socket.exists, 15, layout.logs / "node-forward.log", fwd)

    cpid = _start(layout, "containerd", ["containerd", "--config", str(n / "containerd.toml")])
    _wait("containerd", layout.containerd_socket.exists, 30, layout.logs / "node-containerd.log", cpid)
    imp = subprocess.run(["ctr", "--address", str(layout.containerd_socket), "-n", "k8s.io", "images", "import",
                          str(archive)], capture_output=True, text=True)
    if imp.returncode != 0:
        raise NodeError(f"ctr images import failed: {imp.stderr.strip()}")
    say(f"containerd {_version(['containerd', '--version'])}: images {images.PAUSE_IMAGE}, {images.PROBE_IMAGE}")

    api = Api(layout)
    cluster_objects(api, layout)
    kpid = _start(layout, "kubelet", [
        str(layout.bin_dir / "kubelet"), f"--config={n / 'kubelet.yaml'}",
        f"--kubeconfig={n / 'kubelet.kubeconfig'}", f"--hostname-override={NODE_NAME}", f"--node-ip={NODE_IP}",
        f"--node-labels={REAL_LABEL}=true,node.kubernetes.io/instance-type=mlops-real-cpu,type=real"])
    t_kubelet = time.monotonic()
    _start(layout, "kube-proxy", [str(layout.bin_dir / "kube-proxy"), f"--config={n / 'kube-proxy.yaml'}"])
    _start(layout, "coredns", [str(layout.bin_dir / "coredns"), "-conf", str(n / "Corefile")])
    timeout = float(os.environ.get("CLUSTER_NODE_READY_TIMEOUT", "90"))
    _wait(f"node {NODE_NAME} Ready", lambda: node_ready(api), timeout, layout.logs / "node-kubelet.log", kpid)
    ready = time.monotonic() - t_kubelet
    for svc in ("kube-proxy", "coredns"):
        pid = int(layout.pidfile(svc).read_text())
        if not _alive(pid):
            raise NodeError(f"{svc} exited: see {layout.logs / f'node-{svc}.log'}")
    say(f"node {NODE_NAME} Ready {ready:.1f}s after the kubelet started ({time.monotonic() - t0:.1f}s in all)")
    return {"node_ready_seconds": ready, "up_seconds": time.monotonic() - t0}


# --- NetworkPolicy enforcement ---------------------------------------------------------------
def _hold_pid(layout: Layout) -> int:
    try:
        pid = int(layout.pidfile("hold").read_text())
    except (OSError, ValueError):
        raise NodeError(f"the real node does not run in {layout.cluster_dir} (no namespaces): start it first") from None
    if not _alive(pid):
        raise NodeError(f"the real node's namespaces (pid {pid}) are gone: start the node again")
    return pid


def policy_state(layout: Layout) -> dict[str, list[str]]:
    """kube-router's chains and ipsets in the node's network namespace."""
    hold_pid = _hold_pid(layout)
    rules = subprocess.run(["nsenter", f"--target={hold_pid}", "--net", "iptables-save"], capture_output=True,
                           text=True, check=True, timeout=30).stdout
    chains = sorted({line[1:].split()[0] for line in rules.splitlines()
                     if line.startswith(":") and line[1:].startswith(POLICY_CHAIN_PREFIXES)})
    return {"chains": chains,
            "ipsets": [n for n in ipsets(hold_pid) if n.startswith(POLICY_IPSET_PREFIXES)]}


def kube_router_argv(layout: Layout) -> list[str]:
    return [str(layout.bin_dir / "kube-router"), f"--kubeconfig={layout.node_dir / 'kube-router.kubeconfig'}",
            # the network policy controller only: the bridge CNI routes, kube-proxy serves Services
            "--run-firewall=true", "--run-router=false", "--run-service-proxy=false", "--run-loadbalancer=false",
            f"--hostname-override={NODE_NAME}", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--enable-ipv4=true", "--enable-ipv6=false",
            # nothing listens: no health or metrics port
            "--health-port=0", "--metrics-port=0", "--v=1"]


def start_policy_controller(layout: Layout, timeout: float = 60) -> float:
    """Start kube-router (NetworkPolicy controller only) in the running node's namespaces and
    cgroup; returns the seconds until its top-level chains exist in the node's namespace."""
    _hold_pid(layout)
    if not os.access(layout.bin_dir / "kube-router", os.X_OK):
        raise NodeError(f"kube-router missing in {layout.bin_dir}: run `make cluster-tools`")
    if not _which("ipset"):
        raise NodeError("ipset is missing (Debian: apt-get install ipset; the node's preflight installs it)")
    try:
        pid = int(layout.pidfile("kube-router").read_text())
        if _alive(pid) and pid in cgroup_pids(layout.cgroup_name):
            return 0.0
    except (OSError, ValueError):
        pass
    started = time.monotonic()
    pid = _start(layout, "kube-router", kube_router_argv(layout))
    _wait("kube-router's NetworkPolicy chains",
          lambda: {"KUBE-ROUTER-INPUT", "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT"} <= set(policy_state(layout)["chains"]),
          timeout, layout.logs / "node-kube-router.log", pid)
    seconds = time.monotonic() - started
    say(f"kube-router {_version([str(layout.bin_dir / 'kube-router'), '--version'], 3).rstrip(',')} enforces NetworkPolicies "
        f"on {NODE_NAME} (chains in {seconds:.1f}s)")
    return seconds


def remove_policy_state(layout: Layout) -> None:
    """Delete kube-router's chains (and the jumps to them) and its ipsets in the node's namespace.

    kube-router v2.1.0's own ``--cleanup-config`` cannot do it: it builds its policy controller
    without iptables or ipset handlers, so it removes nothing. One ``iptables-restore --noflush``
    deletes the jumps, flushes and deletes the chains; kube-proxy's and the kubelet's chains stay.
    """
    hold_pid = _hold_pid(layout)
    netns = ["nsenter", f"--target={hold_pid}", "--net"]
    rules = subprocess.run([*netns, "iptables-save", "-t", "filter"], capture_output=True, text=True, check=True,
                           timeout=30).stdout.splitlines()
    ours = [line[1:].split()[0] for line in rules if line.startswith(":") and line[1:].startswith(POLICY_CHAIN_PREFIXES)]
    if ours:
        jumps = [line for line in rules if line.startswith("-A ") and not line.split()[1].startswith(POLICY_CHAIN_PREFIXES)
                 and any(f"-j {c}" in line or f"-g {c}" in line for c in ours)]
        script = ["*filter", *("-D" + j[2:] for j in jumps), *(f"-F {c}" for c in ours), *(f"-X {c}" for c in ours),
                  "COMMIT", ""]
        done = subprocess.run([*netns, "iptables-restore", "--noflush"], input="\n".join(script), capture_output=True,
                              text=True, timeout=30)
        if done.returncode != 0:
            raise NodeError(f"removing kube-router's chains failed: {done.stderr.strip()}")
    for name in policy_state(layout)["ipsets"]:
        subprocess.run([*netns, "ipset", "destroy", name], capture_output=True, text=True, timeout=30, check=False)


def stop_policy_controller(layout: Layout, timeout: float = 10) -> None:
    """Stop kube-router and remove its chains and ipsets from the node's namespace; NodeError
    naming what is left."""
    try:
        pid = int(layout.pidfile("kube-router").read_text())
    except (OSError, ValueError):
        pid = None
    if pid and _alive(pid) and pid in cgroup_pids(layout.cgroup_name):
        os.kill(pid, signal.SIGTERM)
        for left in _wait_gone({pid}, timeout):
            os.kill(left, signal.SIGKILL)
        _wait_gone({pid}, 5)
    layout.pidfile("kube-router").unlink(missing_ok=True)
    remove_policy_state(layout)
    left = policy_state(layout)
    if left["chains"] or left["ipsets"]:
        raise NodeError(f"kube-router's chains {left['chains']} and ipsets {left['ipsets']} are still in the node's "
                        f"namespace (see {layout.logs / 'node-kube-router.log'})")
    say("kube-router stopped; its chains and ipsets are gone from the node's namespace")


def _version(argv: list[str], word: int = 2) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True).stdout.split()[word]
    except (OSError, IndexError):
        return "?"


def check(layout: Layout) -> str | None:
    """None when the node runs (every process alive, node Ready), else why not."""
    for svc in ("hold", "forward", "containerd", "kubelet", "kube-proxy", "coredns"):
        try:
            pid = int(layout.pidfile(svc).read_text())
        except (OSError, ValueError):
            return f"no pid file for the node's {svc}"
        if not _alive(pid) or pid not in cgroup_pids(layout.cgroup_name):
            return f"the node's {svc} (pid {pid}) is not running"
    try:
        if not node_ready(Api(layout)):
            return f"node {NODE_NAME} is not Ready"
    except (OSError, ssl.SSLError) as e:
        return f"the API server does not answer ({e})"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__.split("Usage")[1], file=sys.stderr)
        return 2
    cmd = argv[0]
    if cmd == "hold":
        return hold(Path(argv[1]))
    if cmd == "host-state":
        print(json.dumps(host_state(), indent=1))
        return 0
    layout = Layout.from_env()
    try:
        if cmd == "up":
            up(layout)
        elif cmd == "down":
            down(layout)
        elif cmd == "policy-on":
            start_policy_controller(layout)
        elif cmd == "policy-off":
            stop_policy_controller(layout)
        elif cmd == "check":
            reason = check(layout)
            if reason:
                print(reason)
                return 1
        else:
            print(f"realnode: unknown command {cmd!r}: up, down, check, host-state, policy-on, policy-off",
                  file=sys.stderr)
            return 2
    except NodeError as e:
        print(f"realnode: {e}", file=sys.stderr)
        if cmd == "up":
            try:
                down(layout, quiet=True)
            except NodeError as e2:
                print(f"realnode: cleaning up failed too: {e2}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
