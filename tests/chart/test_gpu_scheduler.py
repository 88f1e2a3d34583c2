"""The GPU-packing scheduler (gpuScheduler): a second kube-scheduler the GPU profiles' pods name.

Off by default, and then the chart renders exactly what it rendered without the feature: with
it on, removing its objects and the `schedulerName` fields gives back the render with it off,
for the defaults and every values file. On: its configuration, image tag from the cluster
version, least-privilege RBAC, restricted pod with probes, and which pods ask for it. Every
object is validated against the Kubernetes schemas by render_chart; the configuration runs in
the real kube-scheduler on the control-plane tier (tests/cluster/test_gpu_packing.py).
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.support import paths
from tests.support.helm import HelmError, find, render_chart
from tests.support.k8s import containers, restricted_violations
from tests.support.overlays import with_overlays

ON = {"gpuScheduler": {"enabled": True}}
COMPONENT = "gpu-scheduler"


def ours(objects: list[dict]) -> list[dict]:
    return [o for o in objects if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == COMPONENT]


def pod_templates(objects: list[dict]) -> dict[str, dict]:
    (cm,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-pod-templates")]
    return {k.removesuffix(".yaml"): yaml.safe_load(v) for k, v in cm["data"].items()}


def scheduler_config(objects: list[dict]) -> dict:
    (cm,) = [o for o in ours(objects) if o["kind"] == "ConfigMap"]
    return yaml.safe_load(cm["data"]["config.yaml"])


def without_feature(objects: list[dict]) -> list[dict]:
    """The render with the scheduler's objects and every schedulerName taken out."""
    out = []
    for obj in objects:
        if obj in ours(objects):
            continue
        obj = copy.deepcopy(obj)
        obj.pop("__source__", None)
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-pod-templates"):
            for key, text in obj["data"].items():
                pod = yaml.safe_load(text)
                pod["spec"].pop("schedulerName", None)
                obj["data"][key] = pod
        for spec in (obj.get("spec", {}).get("template", {}).get("spec"),):
            if spec:
                spec.pop("schedulerName", None)
        out.append(obj)
    return out


def plain(objects: list[dict]) -> list[dict]:
    out = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        obj.pop("__source__", None)
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-pod-templates"):
            obj["data"] = {k: yaml.safe_load(v) for k, v in obj["data"].items()}
        out.append(obj)
    return out


@pytest.mark.parametrize("values_file", [None, *paths.values_files()], ids=lambda p: p.name if p else "defaults")
def test_off_by_default_and_on_adds_only_the_scheduler(values_file) -> None:
    files = with_overlays(values_file) if values_file else []
    off = render_chart(values_files=files, validate=False)
    assert not ours(off)
    assert "schedulerName" not in yaml.safe_dump(plain(off))
    on = render_chart(values_files=[*files], values=ON, validate=False)
    assert len(ours(on)) == 8, sorted(f"{o['kind']}/{o['metadata']['name']}" for o in ours(on))
    assert without_feature(on) == plain(off)


def test_configuration_packs_gpus_with_a_lease_in_the_release_namespace() -> None:
    objects = render_chart(values={**ON, "gpu": {"resourceName": "amd.com/gpu"}}, release="mlops", namespace="ml")
    config = scheduler_config(objects)
    assert config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert config["leaderElection"] == {"leaderElect": True, "resourceLock": "leases",
                                        "resourceName": "mlops-gpu-packing", "resourceNamespace": "ml"}
    (profile,) = config["profiles"]
    assert profile["schedulerName"] == "mlops-gpu-packing"
    assert profile["plugins"]["score"]["enabled"] == [{"name": "NodeResourcesFit", "weight": 5}]
    (fit,) = profile["pluginConfig"]
    assert fit["args"]["scoringStrategy"] == {"type": "MostAllocated", "resources": [
        {"name": "amd.com/gpu", "weight": 10}, {"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]}
    assert "clientConnection" not in config  # in-cluster: the pod's ServiceAccount token


def test_only_gpu_profiles_ask_for_it_unless_cpu_profiles_is_set() -> None:
    templates = pod_templates(render_chart(values=ON, release="mlops"))
    names = {p: t["spec"].get("schedulerName") for p, t in templates.items()}
    assert names == {"cpu": None, "gpu-1": "mlops-gpu-packing", "gpu-2": "mlops-gpu-packing",
                     "gpu-4": "mlops-gpu-packing", "gpu-8": "mlops-gpu-packing"}
    every = pod_templates(render_chart(values={"gpuScheduler": {"enabled": True, "cpuProfiles": True,
                                                                "schedulerName": "packer"}}))
    assert {t["spec"].get("schedulerName") for t in every.values()} == {"packer"}


def test_model_servers_of_a_gpu_profile_ask_for_it() -> None:
    values = {**ON, "serving": {"enabled": True, "domain": "models.example.com", "models": [
        {"name": "iris", "modelUri": "models:/iris@champion"},
        {"name": "wine", "modelUri": "models:/wine/3", "profile": "gpu-1"}]}}
    objects = render_chart(values=values, release="mlops")
    names = {d["metadata"]["name"]: d["spec"]["template"]["spec"].get("schedulerName")
             for d in find(objects, "Deployment") if "-serving-" in d["metadata"]["name"]}
    assert names == {"mlops-airflow-mlops-serving-iris": None, "mlops-airflow-mlops-serving-wine": "mlops-gpu-packing"}


@pytest.mark.parametrize(("kube_version", "tag"), [("1.33", "v1.33.0"), ("1.35", "v1.35.0")])
def test_image_is_the_official_one_at_the_cluster_version(kube_version: str, tag: str) -> None:
    (dep,) = find(ours(render_chart(values=ON, kube_version=kube_version, validate_versions=[kube_version])), "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["image"] == f"registry.k8s.io/kube-scheduler:{tag}"
    pinned = {"gpuScheduler": {"enabled": True, "image": {"tag": "v1.34.2"}}}
    (dep,) = find(ours(render_chart(values=pinned)), "Deployment")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.k8s.io/kube-scheduler:v1.34.2"


def test_the_default_tag_drops_a_vendor_suffix() -> None:
    """A managed cluster reports for example v1.34.3-eks-1a2b3c; registry.k8s.io tags are v1.34.3."""
    from tests.support.helm import helm_template

    text = helm_template(values=ON, kube_version="v1.34.3-eks-1a2b3c", show_only=[
        "templates/gpu-scheduler/gpu-scheduler-deployment.yaml"], release="test", namespace="mlops")
    assert "image: registry.k8s.io/kube-scheduler:v1.34.3\n" in text


def test_deployment_is_restricted_with_probes_on_the_secure_port() -> None:
    objects = render_chart(values={"gpuScheduler": {"enabled": True, "securePort": 10300}}, release="mlops")
    (dep,) = find(ours(objects), "Deployment")
    spec = dep["spec"]["template"]["spec"]
    assert restricted_violations(spec, "gpu-scheduler") == []
    (c,) = [c for _, c in containers(spec)]
    assert "--config=/etc/kubernetes/gpu-scheduler/config.yaml" in c["command"]
    assert "--secure-port=10300" in c["command"]
    assert c["ports"] == [{"name": "https", "containerPort": 10300, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["serviceAccountName"] == "mlops-airflow-mlops-gpu-scheduler"
    assert spec.get("automountServiceAccountToken") is not False  # it talks to the API server
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"config": "/etc/kubernetes/gpu-scheduler", "tmp": "/tmp"}


def test_rbac_binds_the_built_in_scheduler_roles_and_only_its_own_lease() -> None:
    objects = render_chart(values=ON, release="mlops", namespace="ml")
    sa = "mlops-airflow-mlops-gpu-scheduler"
    subject = [{"kind": "ServiceAccount", "name": sa, "namespace": "ml"}]
    crbs = {o["roleRef"]["name"]: o for o in find(objects, "ClusterRoleBinding")}
    assert set(crbs) == {"system:kube-scheduler", "system:volume-scheduler"}
    assert all(o["subjects"] == subject for o in crbs.values())
    assert not find(objects, "ClusterRole")  # nothing cluster-wide of our own
    (role,) = [o for o in find(objects, "Role") if (o["metadata"]["labels"]).get("app.kubernetes.io/component") == COMPONENT]
    assert role["metadata"]["namespace"] == "ml"
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "resourceNames": ["mlops-gpu-packing"], "verbs": ["get", "update"]}]
    bindings = {(o["metadata"]["namespace"], o["roleRef"]["name"]): o for o in ours(find(objects, "RoleBinding"))}
    assert set(bindings) == {("ml", role["metadata"]["name"]), ("kube-system", "extension-apiserver-authentication-reader")}
    assert all(o["subjects"] == subject for o in bindings.values())


@pytest.mark.parametrize(("values", "key"), [
    ({"gpuScheduler": {"enabled": "yes"}}, "enabled"),
    ({"gpuScheduler": {"enabled": True, "image": {"tag": "latest"}}}, "tag"),
    ({"gpuScheduler": {"enabled": True, "schedulerName": "Not_A_Name"}}, "schedulerName"),
    ({"gpuScheduler": {"enabled": True, "replicas": 0}}, "replicas"),
    ({"gpuScheduler": {"enabled": True, "securePort": 80}}, "securePort"),
    ({"gpuScheduler": {"enabled": True, "containerSecurityContext": {"allowPrivilegeEscalation": True}}},
     "containerSecurityContext"),
    ({"gpuScheduler": {"enabled": True, "schedulerNmae": "x"}}, "schedulerNmae"),
])
def test_bad_values_are_refused_naming_the_key(values: dict, key: str) -> None:
    with pytest.raises(HelmError, match=key):
        render_chart(values=values, validate=False)


def test_names_fit_with_the_longest_release_name() -> None:
    """40 characters: the longest release name the official chart accepts (test_naming.py)."""
    objects = render_chart(values=ON, release="r" * 40, namespace="mlops")
    names = [o["metadata"]["name"] for o in ours(objects)]
    assert len(names) == 8 and all(len(n) <= 63 and not n.endswith("-") for n in names), names
    assert len(set((o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in ours(objects))) == 8
    assert len(scheduler_config(objects)["profiles"][0]["schedulerName"]) <= 63


def test_the_pod_operator_keeps_the_templates_scheduler_name(tmp_path) -> None:
    """DAGs change nothing: the KubernetesPodOperator builds its pod on the rendered template and
    keeps its schedulerName (the operator's own `schedulername` is unset)."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    template = tmp_path / "gpu-1.yaml"
    template.write_text(yaml.safe_dump(pod_templates(render_chart(values=ON, release="mlops"))["gpu-1"]))
    op = KubernetesPodOperator(task_id="train", pod_template_file=str(template), image="trainer:0.1.0",
                               cmds=["true"], namespace="mlops")
    assert op.build_pod_request_obj(context=None, dry_run=True).spec.scheduler_name == "mlops-gpu-packing"
