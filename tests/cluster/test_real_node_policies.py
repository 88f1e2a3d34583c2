"""The chart's NetworkPolicies enforced between real pods on the tier's real node.

kube-router (scripts/cluster/realnode.py ``start_policy_controller``: the network policy
controller only, iptables chains and ipsets in the node's network namespace) runs while this
module runs. The chart's NetworkPolicies and MLflow Service are rendered with the values of the
chart's policy tests (tests/chart/test_network_policies.py) into namespaces of this control
plane; probe pods (the real node's probe image: an HTTP server, and ``get`` as the client through
exec) carry the labels and named ports that the chart renders for each component (Airflow's
api-server, MLflow, the development database, the pools Job, a model server, a task pod) plus
two pods no rule admits. Every flow is tried for real, first without policies (every one
answers: the pods and the network work), then with them: each allowed flow answers, each denied
one fails (refused or timed out), and each verdict is the one the chart tests' model of the
NetworkPolicy semantics gives.

Not covered here: DNS. The tier's CoreDNS is a process of the node, not a pod, so the chart's
DNS egress rule (pods labelled k8s-app=kube-dns in kube-system) does not admit it, and under
enforcement an isolated pod cannot resolve names on this tier (on a cluster, CoreDNS is such a
pod). That is why kube-router runs only while this module runs. The connections use pod and
Service IPs.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from scripts.cluster import realnode
from tests.support import network_policy_model as model
from tests.support.helm import find, render_chart
from tests.support.probe_pods import probe_pod

pytestmark = pytest.mark.skipif(__import__("os").environ.get("CLUSTER_REAL_NODE", "1") == "0",
                                reason="CLUSTER_REAL_NODE=0: kwok nodes only")

API = "mlops-api-server"
TASK = "task-cpu"
# endpoint (tests/chart/test_network_policies.py names) -> (pod name, port its server listens on)
PODS = {
    API: ("api", 8080),
    model.MLFLOW: ("mlflow", 5000),
    model.DB: ("db", 5432),
    model.POOLS: ("pools", 8080),
    model.SERVER: ("server", 8080),
    TASK: ("task", 8080),
    "intruder": ("intruder", 8080),
    "same-namespace-stranger": ("stranger", 8080),
}
FLOWS = [
    # what the platform needs
    (TASK, model.MLFLOW, 5000),
    (API, model.MLFLOW, 5000),
    (API, model.DB, 5432),
    (model.POOLS, model.DB, 5432),
    (model.MLFLOW, model.DB, 5432),
    (model.SERVER, model.MLFLOW, 5000),
    (API, model.SERVER, 8080),
    # everything else
    (TASK, model.DB, 5432),
    (TASK, model.SERVER, 8080),
    (TASK, API, 8080),
    (API, TASK, 8080),
    ("intruder", TASK, 8080),
    ("intruder", model.MLFLOW, 5000),
    ("intruder", model.DB, 5432),
    ("intruder", model.SERVER, 8080),
    ("same-namespace-stranger", model.DB, 5432),
    (model.SERVER, model.DB, 5432),
    (model.POOLS, model.MLFLOW, 5000),
    (model.DB, model.MLFLOW, 5000),
]


def layout(cluster) -> realnode.Layout:
    return realnode.Layout(cluster.state_dir, cluster.port_base, Path(realnode.REPO / "bin"))


@pytest.fixture(scope="module")
def controller(cluster, cluster_report):
    lay = layout(cluster)
    seconds = realnode.start_policy_controller(lay)
    pid = int(lay.pidfile("kube-router").read_text())
    yield {"layout": lay, "pid": pid, "start_seconds": seconds}
    realnode.stop_policy_controller(lay)


def exec_get(cluster, ns: str, pod: str, url: str, seconds: int) -> tuple[bool, str]:
    """Run the probe's HTTP client in the pod (through the API server and the kubelet)."""
    from kubernetes import client, config
    from kubernetes.stream import stream

    # a client of its own: stream() swaps its ApiClient's request method while it runs, so
    # concurrent calls on a shared client (or any other call meanwhile) would go astray
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
    resp = stream(core.connect_get_namespaced_pod_exec, pod, ns,
                  command=["/nodeimage", "get", url, str(seconds)],
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=seconds + 20)
    out = resp.read_stdout() + resp.read_stderr()
    resp.close()
    return resp.returncode == 0, out.strip()


@pytest.fixture(scope="module")
def world(cluster, controller):
    base = f"np-{uuid.uuid4().hex[:6]}"
    ns, jobs, serving, other = base, f"{base}-jobs", f"{base}-serving", f"{base}-other"
    for name in (ns, jobs, serving, other):
        cluster.namespace(name)
    values = {**model.VALUES, "tasks": {"namespace": jobs}}
    objects = render_chart(values=values, release=model.RELEASE, namespace=ns, include_subchart=True,
                           validate=False)
    policies = find(objects, "NetworkPolicy")
    assert {p["metadata"]["namespace"] for p in policies} == {ns, jobs, serving}
    eps = model.endpoints(objects)
    # the model's endpoints() names its own namespaces where an object names none (the official
    # chart's) and for the task pods
    moved = {model.NS: ns, model.TASKS_NS: jobs}
    for ep in eps.values():
        ep.namespace = moved.get(ep.namespace, ep.namespace)
    eps["intruder"].namespace = other
    for name, (pod, port) in PODS.items():
        ep = model.ep(eps, name)
        spec = probe_pod(pod, ["serve", f":{port}", f"{name} answers"], labels=ep.labels, restart="Always",
                         readiness_port=port)
        # the component's named ports (the MLflow policy admits port `http`), and the served one
        named = [{"name": n, "containerPort": p} for n, p in ep.ports.items()]
        if port not in ep.ports.values():
            named.append({"containerPort": port})
        spec["spec"]["containers"][0]["ports"] = named
        cluster.core.create_namespaced_pod(ep.namespace, spec)
    (mlflow_svc,) = [s for s in find(objects, "Service") if s["metadata"]["name"] == model.MLFLOW]
    mlflow_svc = {k: v for k, v in mlflow_svc.items() if k != "__source__"}
    cluster.core.create_namespaced_service(ns, mlflow_svc)

    def all_ready():
        for name, (pod, _) in PODS.items():
            p = cluster.core.read_namespaced_pod(pod, model.ep(eps, name).namespace)
            if not any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []):
                return False
        return True

    started = time.monotonic()
    cluster.wait_for("the probe pods Ready on the real node", all_ready, timeout=120)
    ready_s = time.monotonic() - started
    ips = {name: cluster.core.read_namespaced_pod(pod, model.ep(eps, name).namespace).status.pod_ip
           for name, (pod, _) in PODS.items()}
    svc_ip = cluster.core.read_namespaced_service(model.MLFLOW, ns).spec.cluster_ip
    yield {"ns": ns, "policies": policies, "eps": eps, "ips": ips, "mlflow_service": svc_ip, "ready_s": ready_s}
    for name in (ns, jobs, serving, other):
        cluster.core.delete_namespace(name, grace_period_seconds=0)


def try_flows(cluster, world, flows, expect: dict | None = None) -> dict:
    """(src, dst, port) -> (answered, output); allowed flows get 10 s, expected denials one 3 s try."""
    eps = world["eps"]

    def one(flow):
        src, dst, port = flow
        url = dst if dst.startswith("http") else f"http://{world['ips'][dst]}:{port}/"
        seconds = 10 if expect is None or expect[flow] else 0
        return flow, exec_get(cluster, model.ep(eps, src).namespace, PODS[src][0], url, seconds)

    with ThreadPoolExecutor(max_workers=6) as pool:
        return dict(pool.map(one, flows))


def test_without_policies_every_flow_answers(cluster, world):
    """The baseline: kube-router runs, no policy exists yet, every flow answers (the pods, the
    bridge and kube-proxy work; what the next test sees denied is the policies' doing)."""
    results = try_flows(cluster, world, FLOWS)
    failed = {f: out for f, (ok, out) in results.items() if not ok}
    assert not failed, failed


def test_the_charts_policies_deny_and_allow_between_real_pods(cluster, world, controller, cluster_report):
    eps = world["eps"]
    net = cluster.networking
    for p in world["policies"]:
        body = {k: v for k, v in p.items() if k != "__source__"}
        net.create_namespaced_network_policy(body["metadata"]["namespace"], body)
    applied = time.monotonic()
    expect = {f: model.allowed(world["policies"], model.ep(eps, f[0]), model.ep(eps, f[1]), f[2]) for f in FLOWS}
    svc = f"http://{world['mlflow_service']}:5000/"
    service_flows = [(TASK, svc, 5000), ("intruder", svc, 5000)]  # through kube-proxy
    expect.update({service_flows[0]: True, service_flows[1]: False})
    results: dict = {}

    def as_the_policies_say() -> bool:
        # kube-router syncs after each policy event: the flows converge to the policies' verdicts
        results.clear()
        results.update(try_flows(cluster, world, [*FLOWS, *service_flows], expect))
        return all(ok == expect[f] for f, (ok, _) in results.items())

    try:
        cluster.wait_for("every flow as the policies say", as_the_policies_say, timeout=60)
    except AssertionError:
        wrong = {f: (expect[f], out) for f, (ok, out) in results.items() if ok != expect[f]}
        raise AssertionError(f"flows whose real outcome differs from the policies (expected, output): {wrong}") from None
    enforce_s = time.monotonic() - applied
    allowed = [f for f in results if expect[f]]
    denied = [f for f in results if not expect[f]]
    assert len(allowed) == 8 and len(denied) == 13, (allowed, denied)
    for f in allowed:
        assert results[f][1] == f"{f[1] if not f[1].startswith('http') else model.MLFLOW} answers", results[f]
    how = {f: next((w for w in ("refused", "timeout", "deadline exceeded", "unreachable") if w in results[f][1]), None)
           for f in denied}
    assert all(how.values()), {f: results[f][1] for f, w in how.items() if not w}
    rss = int([line for line in Path(f"/proc/{controller['pid']}/status").read_text().splitlines()
               if line.startswith("VmRSS:")][0].split()[1]) // 1024
    cluster_report.append(
        f"real node NetworkPolicies (kube-router): chains in {controller['start_seconds']:.1f}s; every flow as the "
        f"policies say {enforce_s:.1f}s after they were applied: {len(allowed)} allowed flows answered, "
        f"{len(denied)} denied flows failed ({dict(Counter(how.values()))}); "
        f"kube-router RSS {rss} MB; "
        f"8 probe pods Ready in {world['ready_s']:.1f}s")


def test_the_policy_state_is_the_nodes_own(cluster, world, controller):
    """kube-router's chains and ipsets exist in the node's network namespace only."""
    inside = realnode.policy_state(controller["layout"])
    assert {"KUBE-ROUTER-INPUT", "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT"} <= set(inside["chains"])
    assert any(c.startswith("KUBE-POD-FW-") for c in inside["chains"]), inside
    assert any(c.startswith("KUBE-NWPLCY-") for c in inside["chains"]), inside
    assert inside["ipsets"], inside
    host = realnode.host_state()
    assert host["kube_chains"] == [], host["kube_chains"]
    assert not [s for s in host["ipsets"] if s.startswith(realnode.POLICY_IPSET_PREFIXES)], host["ipsets"]


def test_stopping_the_controller_removes_its_chains_and_ipsets(cluster, world, controller):
    lay = controller["layout"]
    realnode.stop_policy_controller(lay)
    assert realnode.policy_state(lay) == {"chains": [], "ipsets": []}
    # kube-proxy's and the kubelet's own chains are still there: only kube-router's went
    rules = realnode.subprocess.run(
        ["nsenter", f"--target={lay.pidfile('hold').read_text().strip()}", "--net", "iptables-save"],
        capture_output=True, text=True, check=True).stdout
    assert ":KUBE-SERVICES" in rules
    assert not realnode._alive(controller["pid"])
