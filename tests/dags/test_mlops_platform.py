"""Unit tests of dags/mlops_platform: config loading, path segments, pod_task guard rails,
and the model-serving objects (validated like the chart's objects)."""

from __future__ import annotations

import copy
import json

import pytest

from tests.support import paths
from tests.support.k8s import restricted_violations, validate_objects


@pytest.fixture()
def prod(platform_envs):
    return platform_envs["production.example"]


@pytest.fixture()
def cfg(prod):
    from mlops_platform.config import parse_platform

    with prod.active():
        return parse_platform(copy.deepcopy(prod.platform), "platform.json")


def test_templates_dir_override(prod) -> None:
    from mlops_platform.config import load_platform

    with prod.active():
        cfg = load_platform()
    assert cfg.profiles["gpu-2"].pod_template_file == str(prod.templates_dir / "gpu-2.yaml")
    assert cfg.profiles["gpu-2"].gpus == 2


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["profiles"].update({"GPU 1": {"gpus": 1, "podTemplateFile": "/x/a.yaml"}}),
            "key 'profiles': 'GPU 1' does not match",
        ),
        (lambda d: d["profiles"]["gpu-1"].update({"gpus": -1}), "key 'profiles.gpu-1.gpus': -1 is less than"),
        (
            lambda d: d["profiles"]["gpu-1"].update({"gpus": 65}),
            "key 'profiles.gpu-1.gpus': 65 is greater than",
        ),
        (
            lambda d: d["profiles"]["gpu-1"].update({"gpus": True}),
            "key 'profiles.gpu-1.gpus': True is not of type",
        ),
        (
            lambda d: d["profiles"]["gpu-1"].update({"podTemplateFile": "gpu-1.yaml"}),
            "'profiles.gpu-1.podTemplateFile'",
        ),
        (lambda d: d.update({"defaultProfile": "tpu"}), "'defaultProfile' is 'tpu'"),
        (lambda d: d["images"].update({"prefix": "https://evil"}), "key 'images.prefix'"),
        (lambda d: d["gpuPool"].update({"slots": "8"}), "key 'gpuPool.slots': '8' is not of type 'integer'"),
        (lambda d: d.pop("tasks"), "'tasks' is a required property"),
        (lambda d: d.update({"schemaVersion": 2}), "schemaVersion 2 is not supported"),
        (lambda d: d.update({"extra": 1}), "Additional properties are not allowed"),
    ],
)
def test_invalid_platform_json_names_the_key(prod, mutate, message) -> None:
    from mlops_platform.config import PlatformConfigError, parse_platform

    doc = copy.deepcopy(prod.platform)
    mutate(doc)
    with prod.active(), pytest.raises(PlatformConfigError) as excinfo:
        parse_platform(doc, "platform.json")
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    "run_id",
    [
        "manual__2026-01-01T00:00:00+00:00",
        "scheduled__2026-01-01T00:00:00+00:00",
        "..",
        ".hidden",
        "a/../../b",
        "x" * 400,
        "ünïcode run",
    ],
)
def test_path_segment_is_one_safe_segment(run_id) -> None:
    import re

    from mlops_platform.common import path_segment

    seg = path_segment(run_id)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,119}", seg), seg
    assert seg not in (".", "..") and "/" not in seg
    assert path_segment(run_id) == seg  # deterministic: every task of the run agrees


def test_path_segment_keeps_distinct_runs_apart() -> None:
    from mlops_platform.common import path_segment

    assert path_segment("manual__a:b") != path_segment("manual__a+b")


def test_pod_task_refuses_foreign_images_and_shell_strings(cfg) -> None:
    from mlops_platform.pods import pod_task

    with pytest.raises(ValueError, match="not from the platform registry"):
        pod_task("t", ["true"], profile="cpu", cfg=cfg, image="docker.io/library/busybox:1")
    with pytest.raises(ValueError, match="not a shell string"):
        pod_task("t", "echo {{ params.x }}", profile="cpu", cfg=cfg)
    with pytest.raises(Exception, match="unknown profile 'gpu-3'"):
        pod_task("t", ["true"], profile="gpu-3", cfg=cfg)


def test_pod_build_refuses_a_rendered_foreign_image(cfg) -> None:
    from mlops_platform.pods import pod_task

    op = pod_task("t", ["true"], profile="cpu", cfg=cfg)
    op.image = "evil.example.com/x:1"  # as if a template had rendered it
    with pytest.raises(ValueError, match="not from the platform registry"):
        op.build_pod_request_obj(None, dry_run=True)


def test_task_resources_keep_the_gpu_limit(cfg) -> None:
    from kubernetes.client import ApiClient
    from mlops_platform.pods import pod_task

    op = pod_task("t", ["true"], profile="gpu-4", cfg=cfg, cpu="2", memory="8Gi")
    pod = ApiClient().sanitize_for_serialization(op.build_pod_request_obj(None, dry_run=True))
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    from pathlib import Path

    import yaml

    profile = yaml.safe_load(Path(op.pod_template_file).read_text())
    kept = profile["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {**kept, "memory": "8Gi", "nvidia.com/gpu": "4"}  # the profile's other limits are kept
    assert op.pool_slots == 4 and op.pool == cfg.gpu_pool


def test_runtime_profile_reserves_the_largest_gpu_count(cfg) -> None:
    from mlops_platform.pods import pod_task

    op = pod_task("t", ["true"], profile="{{ params.profile }}", cfg=cfg)
    assert op.pool_slots == cfg.max_gpus == 8
    assert op.pod_template_file.endswith("/{{ params.profile }}.yaml")


@pytest.mark.parametrize(
    "serving_cfg",
    [{"domain": ""}, {"domain": "models.example.com", "ingressClassName": "nginx", "tls": True}],
)
def test_serving_objects_are_valid_and_restricted(prod, serving_cfg) -> None:
    from mlops_platform.config import parse_platform
    from mlops_platform.serving import serving_objects

    doc = copy.deepcopy(prod.platform)
    doc["serving"] = {**doc["serving"], "enabled": True, **serving_cfg}
    with prod.active():
        cfg = parse_platform(doc, "platform.json")
    objects = serving_objects(cfg, "iris", "3", replicas=2)
    validate_objects([{**o, "__source__": "serving"} for o in objects], versions=paths.KUBE_VERSIONS)
    kinds = [o["kind"] for o in objects]
    assert kinds == ["Deployment", "Service"] + (["Ingress"] if serving_cfg["domain"] else [])
    dep = objects[0]
    spec = dep["spec"]["template"]["spec"]
    assert restricted_violations(spec, "serving") == []
    assert spec["imagePullSecrets"] == [{"name": cfg.pull_secret}]
    assert spec["containers"][0]["image"].startswith(cfg.image_prefix + "/")
    assert "models:/iris/3" in spec["containers"][0]["command"]
    selector = dep["spec"]["selector"]["matchLabels"]
    assert objects[1]["spec"]["selector"] == selector
    assert all(dep["spec"]["template"]["metadata"]["labels"][k] == v for k, v in selector.items())
    if serving_cfg.get("tls"):
        # the chart's TLS Secret of the model hosts (the production example's wildcard), not a
        # per-model Secret nobody makes
        assert objects[2]["spec"]["tls"] == [
            {"hosts": ["iris.models.example.com"], "secretName": "models-example-com-tls"}
        ]
    # idempotent: the same version gives the same objects
    assert json.dumps(serving_objects(cfg, "iris", "3", replicas=2)) == json.dumps(objects)


def test_dag_model_server_is_the_chart_model_server(prod, tmp_path) -> None:
    """The Deployment ml_serving creates equals the chart's for a static model, but for the
    fields that vary per model (name, model URI and version annotations, managed-by, chart
    label) - one definition of the model-server pod."""
    from mlops_platform.config import load_platform
    from mlops_platform.serving import serving_objects

    from tests.support.helm import find, render_chart

    model = {"name": "iris", "modelUri": "models:/iris/3", "replicas": 2}
    objects = render_chart(
        values_files=[paths.VALUES_DIR / "production.example.yaml"],
        values={"serving": {"models": [model]}},
        release="mlops",
        namespace="mlops",
    )
    (chart_dep,) = find(objects, "Deployment", "mlops-airflow-mlops-serving-iris")
    (cm,) = [o for o in objects if o["kind"] == "ConfigMap" and "platform.json" in o["data"]]
    for key, text in cm["data"].items():
        (tmp_path / key).write_text(text)
    cfg = load_platform(tmp_path)
    (dag_dep, *_) = serving_objects(cfg, "iris", "3", replicas=2)

    def comparable(dep: dict) -> dict:
        dep = copy.deepcopy(dep)
        dep.pop("__source__", None)
        dep["metadata"].pop("name")
        for meta in (dep["metadata"], dep["spec"]["template"]["metadata"]):
            meta["annotations"].pop("mlops.airflow.apache.org/model-version", None)
            # Who manages it: Helm's labels on the chart's objects, the platform's release label
            # on the run-time ones (GitOps tools track app.kubernetes.io/instance).
            for key in (
                "app.kubernetes.io/managed-by",
                "helm.sh/chart",
                "app.kubernetes.io/instance",
                "mlops.airflow.apache.org/release",
                "mlops.airflow.apache.org/owner",  # ml_serving's ownership mark (serving.OWNER_LABEL)
            ):
                meta["labels"].pop(key, None)
        for key in (
            "app.kubernetes.io/managed-by",
            "app.kubernetes.io/instance",
            "mlops.airflow.apache.org/release",
        ):
            dep["spec"]["selector"]["matchLabels"].pop(key, None)
        return dep

    assert comparable(dag_dep) == comparable(chart_dep)
    assert dag_dep["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "airflow"
    assert chart_dep["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    # the two never select each other's pods
    assert dag_dep["spec"]["selector"] != chart_dep["spec"]["selector"]


def test_serving_without_the_chart_template_is_a_clear_error(prod) -> None:
    from mlops_platform.config import PlatformConfigError, parse_platform
    from mlops_platform.serving import serving_objects

    doc = copy.deepcopy(prod.platform)
    doc["serving"] = {**doc["serving"], "enabled": False, "deploymentTemplateFile": None}
    with prod.active():
        cfg = parse_platform(doc, "platform.json")
    with pytest.raises(PlatformConfigError, match="serving.enabled=true"):
        serving_objects(cfg, "iris", "3")


def test_runtime_profile_template_renders_from_params(prod) -> None:
    """`pod_task(profile="{{ params.profile }}")`: the template file follows the run's conf."""
    import pendulum
    from airflow.sdk import DAG
    from mlops_platform.config import load_platform
    from mlops_platform.params import profile_param
    from mlops_platform.pods import pod_task

    from tests.support.airflow_pods import build_pod

    with prod.active():
        cfg = load_platform()
        with DAG(
            "runtime_profile",
            schedule=None,
            start_date=pendulum.datetime(2026, 1, 1),
            params={"profile": profile_param(cfg)},
            **cfg.dag_defaults(),
        ) as dag:
            op = pod_task("t", ["true"], profile="{{ params.profile }}", cfg=cfg, memory="1Gi")
        for profile, gpus in (("gpu-2", 2), ("cpu", 0)):
            pod = build_pod(dag, op, conf={"profile": profile})
            assert pod["metadata"]["labels"]["mlops.airflow.apache.org/profile"] == profile
            limits = pod["spec"]["containers"][0]["resources"]["limits"]
            assert str(limits.get("nvidia.com/gpu")) == str(gpus)
            assert bool(pod["spec"].get("tolerations")) == bool(gpus)  # from that profile's template
    assert op.pool_slots == 8


@pytest.mark.parametrize(
    ("profiles", "accepted"),
    [
        ({"p" * 50: {"gpus": 0}}, True),  # the longest profile name
        ({"p" * 51: {"gpus": 0}}, False),
        ({"cpu": {"gpus": 0}, "gpu-64": {"gpus": 64}}, True),  # the most GPUs per pod
        ({"cpu": {"gpus": 0}, "gpu-65": {"gpus": 65}}, False),
        ({}, False),  # no profile at all
    ],
    ids=["name-50", "name-51", "gpus-64", "gpus-65", "no-profiles"],
)
def test_chart_schema_and_loader_agree_on_boundaries(tmp_path, profiles, accepted) -> None:
    """The chart renders exactly the platform.json documents the loader accepts."""
    import yaml
    from mlops_platform.config import PlatformConfigError, load_platform

    from tests.support.helm import HelmError, render_chart

    default = next(iter(profiles), "cpu")
    # Helm merges maps: null removes each default profile, so `profiles` is the whole set.
    chart_defaults = yaml.safe_load((paths.CHART_DIR / "values.yaml").read_text())["profiles"]
    values = {
        "profiles": {**dict.fromkeys(chart_defaults), **profiles},
        "defaultProfile": default,
        "pools": {"items": [{"name": "gpu", "slots": -1}]},  # unlimited: only the profile decides
    }
    try:
        objects = render_chart(values=values, release="mlops", namespace="mlops", validate=False)
    except HelmError as exc:
        assert not accepted, f"the chart refused {list(profiles)}: {exc}"
        # The loader refuses the document the chart would have written.
        (cm,) = [
            o
            for o in render_chart(release="mlops", namespace="mlops", validate=False)
            if o["kind"] == "ConfigMap" and "platform.json" in o["data"]
        ]
        doc = json.loads(cm["data"]["platform.json"])
        doc["profiles"] = {
            name: {"gpus": p["gpus"], "podTemplateFile": f"/opt/airflow/pod-templates/{name}.yaml"}
            for name, p in profiles.items()
        }
        doc["defaultProfile"] = default
        (tmp_path / "platform.json").write_text(json.dumps(doc))
        (tmp_path / "platform.schema.json").write_text(cm["data"]["platform.schema.json"])
        with pytest.raises(PlatformConfigError):
            load_platform(tmp_path)
        return
    assert accepted, f"the chart rendered {list(profiles)}, which should be refused"
    (cm,) = [o for o in objects if o["kind"] == "ConfigMap" and "platform.json" in o["data"]]
    for key, text in cm["data"].items():
        (tmp_path / key).write_text(text)
    cfg = load_platform(tmp_path)
    assert set(cfg.profiles) == set(profiles)
