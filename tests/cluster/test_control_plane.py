"""Smoke tests of the local control plane (scripts/cluster-up) the control-plane tier runs on.

kwok nodes run no containers. The API server, admission (PodSecurity), the authorizer (RBAC),
the scheduler and the controllers (Deployment, Job, PV binder, ServiceAccount, root CA) are the
real Kubernetes v1.35 programs; the four nodes and the lifecycle of the pods bound to them are
simulated by kwok: a pod "runs" because kwok writes its status, nothing is pulled or executed.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.cluster import JOB_POD_DELAY_MS
from tests.support.paths import REPO

NS = "smoke"
GPU_NODES = {"kwok-gpu-0", "kwok-gpu-1"}
CPU_NODES = {"kwok-cpu-0", "kwok-cpu-1"}
GPU_TOLERATION = client.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
# The chart's default GPU placement (charts/airflow-mlops/values.yaml gpu.nodeSelector).
GPU_SELECTOR = {"nvidia.com/gpu.present": "true"}


@pytest.fixture(scope="module")
def ns(cluster):
    return cluster.namespace(NS)


def container(name="main", limits=None, security=None):
    return client.V1Container(
        name=name,
        image="registry.invalid/never-pulled:1",
        resources=client.V1ResourceRequirements(limits=limits, requests=limits),
        security_context=security,
    )


def pod(name, *, containers=None, node_selector=None, tolerations=None, annotations=None, restart="Always"):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        spec=client.V1PodSpec(
            containers=containers or [container()],
            node_selector=node_selector,
            tolerations=tolerations,
            restart_policy=restart,
        ),
    )


def job(name, *, annotations=None, backoff_limit=0):
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=backoff_limit,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(annotations=annotations),
                spec=client.V1PodSpec(containers=[container()], restart_policy="Never"),
            ),
        ),
    )


def pod_phase(cluster, name, phase):
    p = cluster.core.read_namespaced_pod(name, NS)
    return p if p.status.phase == phase else None


def job_condition(cluster, name, kind):
    j = cluster.batch.read_namespaced_job_status(name, NS)
    return j if any(c.type == kind and c.status == "True" for c in (j.status.conditions or [])) else None


def test_server_is_the_pinned_kubernetes(cluster):
    pinned = re.search(r"^KUBERNETES_VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.M).group(1)
    version = client.VersionApi(cluster.api).get_code()
    assert version.git_version == pinned
    assert (version.major, version.minor) == ("1", pinned.split(".")[1])


def test_nodes_mirror_a_gpu_cluster(cluster):
    # the simulated nodes; the real node (tainted: only the pods that select it go there) is
    # tests/cluster/test_real_node.py's
    nodes = {n.metadata.name: n for n in cluster.core.list_node().items
             if (n.metadata.labels or {}).get("mlops.test/real-node") != "true"}
    assert set(nodes) == GPU_NODES | CPU_NODES
    for name, node in nodes.items():
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True", (name, node.status.conditions)
        assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
    for name in GPU_NODES:
        node = nodes[name]
        assert node.metadata.labels["nvidia.com/gpu.present"] == "true"
        assert node.metadata.labels["nvidia.com/gpu.product"]
        assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [("nvidia.com/gpu", "present", "NoSchedule")]
        assert node.status.allocatable["nvidia.com/gpu"] == "8"
        assert node.status.capacity["nvidia.com/gpu"] == "8"
    for name in CPU_NODES:
        node = nodes[name]
        assert "nvidia.com/gpu.present" not in node.metadata.labels
        assert not node.spec.taints
        assert "nvidia.com/gpu" not in node.status.allocatable


def test_cluster_objects_the_platform_expects(cluster):
    classes = {sc.metadata.name: sc for sc in cluster.storage.list_storage_class().items}
    # values/kind.yaml: mlops-shared + the default class; values/production.example.yaml: nfs-client
    assert {"standard", "mlops-shared", "nfs-client"} <= set(classes)
    defaults = [n for n, sc in classes.items()
                if (sc.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"]
    assert defaults == ["standard"]
    ingress = {ic.metadata.name for ic in cluster.networking.list_ingress_class().items}
    assert "nginx" in ingress
    runtime = client.NodeV1Api(cluster.api).read_runtime_class("nvidia")
    assert runtime.handler == "nvidia"


def test_new_namespace_gets_default_service_account_and_root_ca(cluster, ns):
    cluster.wait_for("ServiceAccount default in smoke", lambda: cluster.core.read_namespaced_service_account("default", ns))
    cm = cluster.wait_for("ConfigMap kube-root-ca.crt in smoke",
                          lambda: cluster.core.read_namespaced_config_map("kube-root-ca.crt", ns))
    assert "BEGIN CERTIFICATE" in cm.data["ca.crt"]


def test_gpu_pod_is_scheduled_on_a_gpu_node_and_runs(cluster, ns):
    cluster.core.create_namespaced_pod(ns, pod(
        "gpu-1",
        containers=[container(limits={"nvidia.com/gpu": "1", "cpu": "1", "memory": "1Gi"})],
        node_selector=GPU_SELECTOR,
        tolerations=[GPU_TOLERATION],
    ))
    try:
        running = cluster.wait_for("pod gpu-1 Running", lambda: pod_phase(cluster, "gpu-1", "Running"), timeout=30)
        assert running.spec.node_name in GPU_NODES
        assert all(s.ready for s in running.status.container_statuses)
        assert running.status.pod_ip
    finally:  # a Running pod keeps its GPU for the whole session (the capacity test counts on all 16)
        cluster.core.delete_namespaced_pod("gpu-1", ns, grace_period_seconds=0)


def test_gpu_pod_without_toleration_or_with_too_many_gpus_stays_pending(cluster, ns):
    """The real scheduler decides: the taint keeps untolerating pods off GPU nodes, 8 GPUs per node."""
    cluster.core.create_namespaced_pod(ns, pod(
        "gpu-no-toleration", containers=[container(limits={"nvidia.com/gpu": "1"})], node_selector=GPU_SELECTOR))
    cluster.core.create_namespaced_pod(ns, pod(
        "gpu-9", containers=[container(limits={"nvidia.com/gpu": "9"})],
        node_selector=GPU_SELECTOR, tolerations=[GPU_TOLERATION]))

    def unschedulable(name):
        p = cluster.core.read_namespaced_pod(name, ns)
        cond = [c for c in (p.status.conditions or []) if c.type == "PodScheduled"]
        return cond[0] if cond and cond[0].reason == "Unschedulable" else None

    taint = cluster.wait_for("gpu-no-toleration Unschedulable", lambda: unschedulable("gpu-no-toleration"))
    # the two GPU nodes refuse it for their taint (and the real node, tainted, for its own),
    # the two CPU nodes for the selector
    real = [n for n in cluster.core.list_node().items if (n.metadata.labels or {}).get("mlops.test/real-node") == "true"]
    assert f"{2 + len(real)} node(s) had untolerated taint" in taint.message, taint.message
    too_many = cluster.wait_for("gpu-9 Unschedulable", lambda: unschedulable("gpu-9"))
    assert "Insufficient nvidia.com/gpu" in too_many.message, too_many.message


def test_the_scheduler_bin_packs_gpus_and_keeps_a_whole_node_for_an_8_gpu_pod(cluster, ns):
    """The scheduler scores nodes MostAllocated on nvidia.com/gpu (scripts/cluster-up), as GPU
    clusters are run: 1-, 2- and 4-GPU pods, placed one after another, go to the same GPU node
    (the default, LeastAllocated, spreads them over both), so an 8-GPU pod still finds a whole one."""
    names = []
    try:
        for gpus in (1, 2, 4, 8):
            name = f"binpack-{gpus}"
            cluster.core.create_namespaced_pod(ns, pod(
                name, containers=[container(limits={"nvidia.com/gpu": str(gpus)})],
                node_selector=GPU_SELECTOR, tolerations=[GPU_TOLERATION]))
            names.append(name)
            cluster.wait_for(f"pod {name} Running", lambda n=name: pod_phase(cluster, n, "Running"), timeout=30)
        nodes = {n: cluster.core.read_namespaced_pod(n, ns).spec.node_name for n in names}
        small = {nodes[f"binpack-{g}"] for g in (1, 2, 4)}
        assert len(small) == 1, f"the 1/2/4-GPU pods were spread over {sorted(small)}: {nodes}"
        assert nodes["binpack-8"] in GPU_NODES - small, nodes
    finally:
        for name in names:
            cluster.core.delete_namespaced_pod(name, ns, grace_period_seconds=0)


def test_deployment_pods_stay_running(cluster, ns):
    labels = {"app": "web"}
    cluster.apps.create_namespaced_deployment(ns, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container(limits={"cpu": "100m", "memory": "64Mi"})]),
            ),
        ),
    ))
    cluster.wait_for("Deployment web available",
                     lambda: (cluster.apps.read_namespaced_deployment_status("web", ns).status.available_replicas or 0) == 2)
    time.sleep(JOB_POD_DELAY_MS / 1000 + 1)  # longer than a run-to-completion pod lives
    pods = cluster.core.list_namespaced_pod(ns, label_selector="app=web").items
    assert [p.status.phase for p in pods] == ["Running", "Running"]
    assert {p.spec.node_name for p in pods} <= CPU_NODES  # no toleration: never on a GPU node


def test_job_completes(cluster, ns):
    cluster.batch.create_namespaced_job(ns, job("done"))
    done = cluster.wait_for("Job done Complete", lambda: job_condition(cluster, "done", "Complete"), timeout=60)
    assert done.status.succeeded == 1
    pods = cluster.core.list_namespaced_pod(ns, label_selector="job-name=done").items
    assert [p.status.phase for p in pods] == ["Succeeded"]
    assert pods[0].status.container_statuses[0].state.terminated.exit_code == 0


def test_annotated_pod_fails_and_fails_its_job(cluster, ns):
    cluster.core.create_namespaced_pod(ns, pod("fails", restart="Never", annotations={"mlops.test/kwok-fail": "true"}))
    failed = cluster.wait_for("pod fails Failed", lambda: pod_phase(cluster, "fails", "Failed"), timeout=30)
    assert failed.status.container_statuses[0].state.terminated.exit_code == 1

    cluster.batch.create_namespaced_job(ns, job("broken", annotations={"mlops.test/kwok-fail": "true"}))
    broken = cluster.wait_for("Job broken Failed", lambda: job_condition(cluster, "broken", "Failed"), timeout=60)
    assert broken.status.failed == 1 and not broken.status.succeeded


def test_pod_delay_annotation_keeps_a_task_pod_running(cluster, ns):
    cluster.core.create_namespaced_pod(ns, pod("slow", restart="Never", annotations={"mlops.test/kwok-delay": "1h"}))
    cluster.wait_for("pod slow Running", lambda: pod_phase(cluster, "slow", "Running"), timeout=30)
    time.sleep(JOB_POD_DELAY_MS / 1000 + 1)
    assert cluster.core.read_namespaced_pod("slow", ns).status.phase == "Running"
    cluster.core.delete_namespaced_pod("slow", ns)

    def gone():
        try:
            cluster.core.read_namespaced_pod("slow", ns)
        except ApiException as exc:
            return exc.status == 404
        return False

    cluster.wait_for("pod slow deleted (kwok plays the kubelet)", gone, timeout=30)


def test_restricted_namespace_rejects_a_privileged_pod(cluster):
    ns = cluster.namespace("smoke-restricted", labels={"pod-security.kubernetes.io/enforce": "restricted"})
    with pytest.raises(ApiException) as err:
        cluster.core.create_namespaced_pod(ns, pod(
            "privileged", containers=[container(security=client.V1SecurityContext(privileged=True))]))
    assert err.value.status == 403
    message = json.loads(err.value.body)["message"]
    assert 'violates PodSecurity "restricted:latest"' in message, message
    assert "privileged (container \"main\" must not set securityContext.privileged=true)" in message, message

    # a pod that follows the restricted profile is admitted
    restricted = client.V1SecurityContext(
        allow_privilege_escalation=False, run_as_non_root=True, run_as_user=1000,
        capabilities=client.V1Capabilities(drop=["ALL"]),
        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
    )
    cluster.core.create_namespaced_pod(ns, pod("restricted", containers=[container(security=restricted)]))


def test_claims_bind_to_static_volumes(cluster, ns):
    def claim(name, storage_class, size="1Gi", mode="ReadWriteOnce"):
        return client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PersistentVolumeClaimSpec(
                storage_class_name=storage_class, access_modes=[mode],
                resources=client.V1VolumeResourceRequirements(requests={"storage": size}),
            ),
        )

    def bound(name):
        pvc = cluster.core.read_namespaced_persistent_volume_claim(name, ns)
        return pvc if pvc.status.phase == "Bound" else None

    # a claim of a class from the values files binds to a volume of the class's static pool
    cluster.core.create_namespaced_persistent_volume_claim(ns, claim("workspace", "mlops-shared", "2Gi", "ReadWriteMany"))
    pvc = cluster.wait_for("PVC workspace Bound", lambda: bound("workspace"), timeout=30)
    assert pvc.spec.volume_name.startswith("sim-mlops-shared-")
    # no storageClassName: the default class
    default = claim("data", None)
    cluster.core.create_namespaced_persistent_volume_claim(ns, default)
    pvc = cluster.wait_for("PVC data Bound", lambda: bound("data"), timeout=30)
    assert pvc.spec.storage_class_name == "standard"

    # a static PV reserved for one claim (claimRef), as the chart's NFS datasets volume is
    cluster.core.create_persistent_volume(client.V1PersistentVolume(
        metadata=client.V1ObjectMeta(name="smoke-datasets"),
        spec=client.V1PersistentVolumeSpec(
            capacity={"storage": "5Gi"}, access_modes=["ReadOnlyMany"], storage_class_name="",
            persistent_volume_reclaim_policy="Retain",
            nfs=client.V1NFSVolumeSource(server="nfs.example.com", path="/exports/datasets"),
            claim_ref=client.V1ObjectReference(namespace=ns, name="datasets"),
        ),
    ))
    cluster.core.create_namespaced_persistent_volume_claim(ns, claim("datasets", "", "5Gi", "ReadOnlyMany"))
    pvc = cluster.wait_for("PVC datasets Bound", lambda: bound("datasets"), timeout=30)
    assert pvc.spec.volume_name == "smoke-datasets"


def test_service_account_token_is_authenticated_and_authorized_by_rbac(cluster, ns):
    """TokenRequest works (the signing key), and the real authorizer denies what RBAC does not grant."""
    cluster.core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader")))
    cluster.rbac.create_namespaced_role(ns, client.V1Role(
        metadata=client.V1ObjectMeta(name="pod-reader"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list"])],
    ))
    cluster.rbac.create_namespaced_role_binding(ns, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="reader"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=ns)],
    ))
    token = cluster.core.create_namespaced_service_account_token(
        "reader", ns, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    ).status.token

    configuration = client.Configuration()
    configuration.host = cluster.server
    configuration.ssl_ca_cert = str(cluster.state_dir / "pki" / "ca.crt")
    configuration.api_key = {"authorization": f"Bearer {token}"}
    as_sa = client.CoreV1Api(client.ApiClient(configuration))
    as_sa.list_namespaced_pod(ns)  # granted by the Role
    with pytest.raises(ApiException) as err:
        as_sa.list_namespaced_secret(ns)
    assert err.value.status == 403
    assert f"system:serviceaccount:{ns}:reader" in err.value.body
    with pytest.raises(ApiException) as err:
        as_sa.list_namespaced_pod("default")
    assert err.value.status == 403


def test_every_server_listens_on_loopback_only(cluster):
    pids = {(cluster.state_dir / "run" / f"{c}.pid").read_text().strip()
            for c in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")}
    out = subprocess.run(["ss", "-Hltnup"], capture_output=True, text=True, check=True).stdout
    ours = [line for line in out.splitlines() if any(f"pid={p}," in line for p in pids)]
    assert ours, out
    for line in ours:
        local = line.split()[4]
        assert local.startswith("127.0.0.1:"), line


def test_helm_installs_a_chart_with_a_hook_job_and_a_kube_version_constraint(cluster, tmp_path):
    """The fixture's helm talks to this cluster; the stamped server version satisfies a
    kubeVersion constraint (an unstamped v0.0.0-master would not); a hook Job completes via kwok."""
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: probe\nversion: 0.1.0\nkubeVersion: '>=1.33.0-0'\n")
    (chart / "templates" / "objects.yaml").write_text("""\
apiVersion: apps/v1
kind: Deployment
metadata: {name: probe}
spec:
  replicas: 1
  selector: {matchLabels: {app: probe}}
  template:
    metadata: {labels: {app: probe}}
    spec:
      containers: [{name: main, image: registry.invalid/probe:1}]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: probe-hook
  annotations:
    helm.sh/hook: post-install
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: registry.invalid/probe:1}]
""")
    ns = "smoke-helm"
    started = time.monotonic()
    cluster.helm("install", "probe", str(chart), "-n", ns, "--create-namespace", "--wait", "--wait-for-jobs",
                 "--timeout", "60s")
    took = time.monotonic() - started
    status = cluster.helm("status", "probe", "-n", ns, "-o", "json")
    assert json.loads(status.stdout)["info"]["status"] == "deployed"
    hook = cluster.batch.read_namespaced_job_status("probe-hook", ns)
    assert hook.status.succeeded == 1
    assert cluster.apps.read_namespaced_deployment_status("probe", ns).status.available_replicas == 1
    print(f"helm install --wait with a hook Job: {took:.1f}s")
    cluster.helm("uninstall", "probe", "-n", ns, "--wait")
