"""Authoring and trigger boundaries: what a YAML pipeline file or a run's conf cannot do.

Each class of problem has its own cases (hostile and careless), checked where it is refused:
the YAML loader (`build_pipeline`, file + task + key in the message), the Params (jsonschema, as
Airflow validates a conf), the operators (template fields at parse time, the pod as built), the
Base Command job spec and ml_serving's rollout (the in-memory API stand-in of
test_serving_rollout: no API server runs in this tier).
"""

from __future__ import annotations

import copy
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import paths

GOOD_TASK = "      profile: cpu\n      command: [mlops-trainer, --version]\n"


@pytest.fixture()
def kind(platform_envs):
    env = platform_envs["kind"]
    with env.active():
        yield env


def _pipeline(tasks: str, extra: str = "", dag_id: str = "bad") -> str:
    return f"{dag_id}:\n  description: a test pipeline\n{extra}  tasks:\n{textwrap.indent(tasks, '    ')}"


def _task(lines: str, body: str = GOOD_TASK) -> str:
    return _pipeline("step:\n" + body + lines)


def _build(tmp_path: Path, text: str, name: str = "bad.yaml") -> Any:
    from mlops_platform.yaml_pipelines import build_pipeline

    folder = tmp_path / "pipelines"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return build_pipeline(path)


def _refused(tmp_path: Path, text: str, *parts: str) -> str:
    from mlops_platform.yaml_pipelines import YamlPipelineError

    with pytest.raises(YamlPipelineError) as info:
        _build(tmp_path, text)
    message = str(info.value)
    assert message.startswith("bad.yaml: "), message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    assert len(message) < 2500, len(message)
    return message


# --- 1. templates ------------------------------------------------------------------------------

PARAMS = "  params:\n    dataset: {kind: dataset, default: iris}\n"
DENIED_TEMPLATES = {
    "conn-password": "{{ conn.airflow_db.password }}",
    "conn-subscript": "{{ conn['ngc'].password }}",
    "conn-whitespace-control": "{{- conn.x.password -}}",
    "var-value": "{{ var.value.api_key }}",
    "var-json": "{{ var.json.settings }}",
    "dag-run-conf": "{{ dag_run.conf['cmd'] }}",
    "dag-run-conf-attr": "{{ dag_run.conf.cmd }}",
    "undeclared-param": "{{ params.cmd }}",
    "params-subscript": "{{ params['dataset'] }}",
    "macros": "{{ macros.datetime.now() }}",
    "airflow-config": "{{ conf.get('database', 'sql_alchemy_conn') }}",
    "ti-xcom": "{{ ti.xcom_pull(task_ids='x') }}",
    "filter-attr": "{{ params.dataset | attr('__class__') }}",
    "filter-unknown": "{{ params.dataset | tojson }}",
    "dunder": "{{ params.dataset.__class__ }}",
    "concat-with-conn": "{{ params.dataset ~ conn.x.password }}",
    "call": "{{ lipsum() }}",
    "for-block": "{% for c in [1] %}{{ c }}{% endfor %}",
    "set-block": "{% set x = 1 %}{{ x }}",
    "raw-block": "{% raw %}{{ conn.x.password }}{% endraw %}",
    "comment-hides-code": "{# {{ conn.x.password }} #}data",
    "syntax-error": "{{ params.dataset",
    "dag-attribute": "{{ dag.params }}",
    "platform-attribute": "{{ platform.__dict__ }}",
}


@pytest.mark.parametrize("field", ["command", "env", "secret_env"])
@pytest.mark.parametrize("case", sorted(DENIED_TEMPLATES))
def test_yaml_templates_outside_the_allow_list_are_refused(case, field, tmp_path, kind) -> None:
    template = DENIED_TEMPLATES[case].replace("'", "''")
    if field == "command":
        lines, key = "", "command[1]"
        body = f"      profile: cpu\n      command: [mlops-trainer, '{template}']\n"
    elif field == "env":
        lines, key, body = f"      env: {{LOG_LEVEL: '{template}'}}\n", "env.LOG_LEVEL", GOOD_TASK
    else:
        lines, key, body = f"      secret_env: {{TOKEN: '{template}'}}\n", "secret_env.TOKEN", GOOD_TASK
    expected = {"syntax-error": "not a valid template", "undeclared-param": "is not declared under params (dataset)"}
    message = _refused(tmp_path, _pipeline("step:\n" + body + lines, extra=PARAMS), "task 'step'", f"key '{key}'")
    assert expected.get(case, "not allowed") in message and "; allowed: params.dataset, run_id" in message


def test_yaml_allowed_templates_render(tmp_path, kind) -> None:
    from tests.support.airflow_pods import build_pod

    command = ("[mlops-trainer, '{{ params.dataset }}', '{{ run_id | mlops_path_segment }}', '{{ dag.dag_id }}',"
               " '{{ task.task_id }}', '{{ platform.workspace }}/{{ ds_nodash }}', '{{ \"x\" }}']")  # fmt: skip
    dag = _build(tmp_path, _pipeline(f"step:\n      profile: cpu\n      command: {command}\n", extra=PARAMS))
    pod = build_pod(dag, dag.get_task("step"), conf={"dataset": "wine"}, run_id="manual__2026-01-01T00:00:00+00:00")
    args = pod["spec"]["containers"][0]["args"]
    assert args[0] == "wine" and args[2:4] == ["bad", "step"] and args[-1] == "x", args
    assert ":" not in args[1] and args[4].startswith("/workspace/")


def test_a_conf_key_that_is_not_a_declared_param_never_reaches_a_yaml_task(tmp_path, kind) -> None:
    """Airflow merges undeclared conf keys into params; no template may read them (above), and
    the declared ones keep their schema."""
    from airflow.sdk.definitions.param import ParamValidationError  # type: ignore[attr-defined]

    dag = _build(tmp_path, _pipeline("step:\n      profile: cpu\n      command: [echo, '{{ params.dataset }}']\n", PARAMS))
    with pytest.raises(ParamValidationError):
        dag.params.get_param("dataset").resolve("iris; rm -rf /")
    _refused(tmp_path, _pipeline("step:\n      profile: cpu\n      command: [echo, '{{ params.extra }}']\n", PARAMS),
             "params.extra is not declared under params (dataset)")  # fmt: skip


@pytest.mark.parametrize(
    "field",
    [
        {"cmds": ["python", "-c", "print('{{ conn.airflow_db.password }}')"]},
        {"arguments": ["{{ var.value.api_key }}"]},
        {"env_vars": {"X": "{{ dag_run.conf['x'] }}"}},
        {"extra_env": {"X": "{{ conf.get('core', 'fernet_key') }}"}},
        {"labels": {"x": "{{ ti.get_template_context() }}"}},
        {"arguments": ["{{ params.x.__class__.__mro__ }}"]},
        {"arguments": ["{% set c = conn %}{{ c.x.password }}"]},
        {"image": "{{ macros.uuid }}"},
    ],
    ids=["conn", "var", "dag_run.conf", "airflow-conf", "ti-method", "dunder", "set-alias", "macros"],
)
def test_operator_fields_never_read_secrets_or_conf_unless_opted_in(field, kind) -> None:
    from mlops_platform.config import load_platform
    from mlops_platform.pods import MlopsPodOperator, pod_task, pod_task_kwargs
    from mlops_platform.templates import TemplateNotAllowed

    cfg = load_platform()
    kwargs = pod_task_kwargs("t", ["true"], profile="cpu", cfg=cfg)
    kwargs.update(field)
    with pytest.raises(TemplateNotAllowed, match="t: field"):
        MlopsPodOperator(**kwargs)
    if "cmds" not in field and "image" not in field:
        with pytest.raises(TemplateNotAllowed):  # the helper refuses it too (MlopsPodOperator.partial)
            pod_task("t", ["true"], profile="cpu", cfg=cfg, **field)


def test_an_operator_may_opt_in_to_a_denied_name(kind) -> None:
    from mlops_platform.config import load_platform
    from mlops_platform.pods import pod_task

    cfg = load_platform()
    op = pod_task("t", ["echo", "{{ var.value.greeting }}"], profile="cpu", cfg=cfg, allow_template_names=["var"])
    assert op.allow_template_names == ["var"]
    with pytest.raises(ValueError, match="allowed are conn, var, dag_run, conf, macros"):
        pod_task("t", ["true"], profile="cpu", cfg=cfg, allow_template_names=["anything"])


def test_base_command_job_fields_never_read_secrets() -> None:
    from mlops_platform.basecommand.operator import BaseCommandJobOperator
    from mlops_platform.templates import TemplateNotAllowed

    common = {"task_id": "job", "instance_types": {"gpu-1": "dgx1v.16g.1.norm"}, "profile": "gpu-1"}
    with pytest.raises(TemplateNotAllowed, match="field 'env'"):
        BaseCommandJobOperator(image="nvidia/pytorch:25.01-py3", command=["true"],
                               env={"K": "{{ conn.ngc.password }}"}, **common)  # fmt: skip
    with pytest.raises(TemplateNotAllowed, match="field 'command'"):
        BaseCommandJobOperator(image="nvidia/pytorch:25.01-py3", command=["echo", "{{ dag_run.conf }}"], **common)


# --- 2. names ------------------------------------------------------------------------------------

CONTROL = ["\n", "\r", "\x00", "\t", "\x1b", "\x7f"]


@pytest.mark.parametrize("char", CONTROL, ids=[repr(c) for c in CONTROL])
def test_every_name_rule_refuses_control_characters_anywhere(char) -> None:
    from mlops_platform import names

    samples = {
        names.ENV_NAME: "LOG_LEVEL",
        names.IDENTIFIER: "step",
        names.IMAGE_NAME: "team/tool",
        names.IMAGE_TAG: "1.0.0",
        names.MODEL_NAME: "iris",
        names.RELATIVE_PATH: "wine/part-1.csv",
        names.MOUNT_PATH: "/data",
        names.NGC_IMAGE: "nvidia/pytorch:25.01-py3",
        names.DNS_LABEL: "serving",
    }
    import jsonschema

    for rule, good in samples.items():
        assert rule.ok(good), rule
        jsonschema.validate(good, rule.schema())
        for bad in (good + char, char + good, good[:1] + char + good[1:]):
            assert not rule.ok(bad), (rule.what, bad)
            # Airflow checks Params with jsonschema (Python re.search, `$` before a final newline)
            assert not jsonschema.Draft202012Validator(rule.schema()).is_valid(bad), (rule.what, bad)


@pytest.mark.parametrize(
    ("param", "bad"),
    [
        ("env", {"MLOPS_WORKSPACE_SUBPATH\n": "other_dag/run"}),
        ("env", {"LOG_LEVEL\x00": "x"}),
        ("secrets", {"TOKEN\n": "hf-token/token"}),
        ("image", "trainer\n"),
        ("tag", "1.0.0\n"),
        ("tag", "latest"),
        ("image", "docker.io/library/python"),
    ],
)
def test_run_job_conf_names_with_control_characters_are_refused(dagbags, param, bad) -> None:
    from airflow.sdk.definitions.param import ParamValidationError  # type: ignore[attr-defined]

    dag = dagbags["production.example"].dags["run_job"]
    with pytest.raises(ParamValidationError):
        dag.params.get_param(param).resolve(bad)


def test_ml_serving_model_names_with_control_characters_are_refused(dagbags) -> None:
    from airflow.sdk.definitions.param import ParamValidationError  # type: ignore[attr-defined]

    param = dagbags["kind"].dags["ml_serving"].params.get_param("model_name")
    assert param.resolve("iris") == "iris"
    for bad in ("iris\n", "iris\x00", "ir\nis", "x" * 41):
        with pytest.raises(ParamValidationError):
            param.resolve(bad)


@pytest.mark.parametrize(
    ("lines", "key"),
    [
        ('      env: {"LOG_LEVEL\\n": x}\n', "env"),
        ("      image: \"trainer:1.0\\n\"\n", "image"),
        ("      image: \"trainer\\0:1.0\"\n", "image"),
        ("      profile: \"cpu\\n\"\n", "profile"),
    ],
)
def test_yaml_names_with_control_characters_are_refused(lines, key, tmp_path, kind) -> None:
    body = GOOD_TASK if "profile" not in lines else "      command: [mlops-trainer, --version]\n"
    _refused(tmp_path, _task(lines, body=body), "task 'step'")


def test_yaml_task_id_with_a_newline_is_refused(tmp_path, kind) -> None:
    _refused(tmp_path, _pipeline('"step\\n":\n' + GOOD_TASK), "key 'tasks'")


def test_platform_json_names_with_control_characters_are_refused(platform_envs) -> None:
    from mlops_platform.config import PlatformConfigError, parse_platform

    env = platform_envs["kind"]
    for path, value in ((("images", "trainer"), "trainer:1.0\n"), (("images", "prefix"), "registry.local\n")):
        doc = copy.deepcopy(env.platform)
        doc[path[0]][path[1]] = value
        with env.active(), pytest.raises(PlatformConfigError, match=f"key '{'.'.join(path)}'"):
            parse_platform(doc, "platform.json")


# --- 3. reserved environment ---------------------------------------------------------------------

RESERVED = ["NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "CUDA_VISIBLE_DEVICES", "LD_PRELOAD",
            "LD_AUDIT", "MLOPS_WORKSPACE_SUBPATH", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_PASSWORD",
            "MLOPS_GPUS", "HOME", "PYTHONPATH", "KUBERNETES_SERVICE_HOST"]  # fmt: skip


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_names_are_refused_in_yaml_env_and_secret_env(name, tmp_path, kind) -> None:
    _refused(tmp_path, _task(f"      env: {{{name}: all}}\n"), f"key 'env.{name}'", "reserved")
    _refused(tmp_path, _task(f"      secret_env: {{{name}: hf-token/token}}\n"), f"key 'secret_env.{name}'", "reserved")


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_names_are_refused_in_conf_env(dagbags, name) -> None:
    from airflow.sdk.definitions.param import ParamValidationError  # type: ignore[attr-defined]

    dag = dagbags["production.example"].dags["run_job"]
    with pytest.raises(ParamValidationError):
        dag.params.get_param("env").resolve({name: "all"})
    assert dag.params.get_param("env").resolve({"LOG_LEVEL": "1"}) == {"LOG_LEVEL": "1"}


def test_reserved_names_are_refused_as_rendered_at_pod_build(kind) -> None:
    """A JSON text rendered into extra_env (as run_job's `{{ params.env }}`), or a second entry of a
    variable the template sets: refused when the pod is built."""
    from kubernetes.client import models as k8s
    from mlops_platform.config import load_platform
    from mlops_platform.pods import pod_task

    cfg = load_platform()
    op = pod_task("t", ["true"], profile="cpu", cfg=cfg, extra_env='{"NVIDIA_VISIBLE_DEVICES": "all"}')
    with pytest.raises(ValueError, match="NVIDIA_VISIBLE_DEVICES' is reserved"):
        op.build_pod_request_obj(None, dry_run=True)
    for name in ("MLOPS_PROFILE", "MLFLOW_TRACKING_URI", "HOME"):  # set by the profile's template
        op = pod_task("t", ["true"], profile="cpu", cfg=cfg)
        op.env_vars = {**op.env_vars, name: "x"}
        with pytest.raises(ValueError, match=f"{name}' is reserved by the platform"):
            op.build_pod_request_obj(None, dry_run=True)
    op = pod_task("t", ["true"], profile="cpu", cfg=cfg)
    op.env_vars = [k8s.V1EnvVar(name="LOG_LEVEL", value=v) for v in ("a", "b")]
    with pytest.raises(ValueError, match="'LOG_LEVEL' is set twice in the pod"):
        op.build_pod_request_obj(None, dry_run=True)
    op = pod_task("t", ["true"], profile="cpu", cfg=cfg, extra_env={"MLOPS_WORKSPACE_SUBPATH": "other_dag/run"})
    with pytest.raises(ValueError, match="is reserved|already set"):
        op.build_pod_request_obj(None, dry_run=True)
    op = pod_task("t", ["true"], profile="cpu", cfg=cfg)
    op.env_vars = [k8s.V1EnvVar(name=k, value=v) for k, v in op.env_vars.items()] + [k8s.V1EnvVar(name="LOG_LEVEL\n", value="x")]
    with pytest.raises(ValueError, match="not a valid environment variable name"):
        op.build_pod_request_obj(None, dry_run=True)


# --- 4. resources --------------------------------------------------------------------------------


def _limits(op: Any) -> dict[str, Any]:
    from kubernetes.client import ApiClient

    pod = ApiClient().sanitize_for_serialization(op.build_pod_request_obj(None, dry_run=True))
    return pod["spec"]["containers"][0]["resources"]


def test_task_resources_only_narrow_the_profile(kind) -> None:
    from mlops_platform.config import load_platform
    from mlops_platform.pods import pod_task

    cfg = load_platform()
    template = kind.pod_templates
    gpu1 = template["gpu-1"]
    profile = gpu1["spec"]["containers"][0]["resources"]
    res = _limits(pod_task("t", ["true"], profile="gpu-1", cfg=cfg, cpu="100m"))
    assert res["limits"] == {**profile["limits"], "nvidia.com/gpu": "1"}, "every limit of the profile is kept"
    assert res["requests"]["cpu"] == "100m" and res["requests"]["memory"] == profile["requests"]["memory"]
    res = _limits(pod_task("t", ["true"], profile="gpu-1", cfg=cfg, memory="128Mi"))
    assert res["limits"]["memory"] == "128Mi" and res["limits"]["cpu"] == profile["limits"]["cpu"]
    for sizes, message in (
        ({"memory": "1Ti"}, "memory limit '1Ti' is above the profile's"),
        ({"cpu": "100"}, "cpu request '100' is above the profile's"),
        ({"cpu_limit": "64"}, "cpu limit '64' is above the profile's"),
    ):
        with pytest.raises(ValueError, match=message):
            pod_task("t", ["true"], profile="gpu-1", cfg=cfg, **sizes)


def test_yaml_task_resources_only_narrow_the_profile(tmp_path, kind) -> None:
    from tests.support.airflow_pods import build_pod

    dag = _build(tmp_path, _task("      cpu: 100m\n", body="      profile: gpu-1\n      command: [mlops-trainer]\n"))
    limits = build_pod(dag, dag.get_task("step"))["spec"]["containers"][0]["resources"]["limits"]
    assert {"cpu", "memory", "nvidia.com/gpu"} <= set(limits), limits
    _refused(tmp_path, _task("      memory: 1Ti\n"), "task 'step': key 'memory'", "memory limit '1Ti' is above the profile's")


def test_a_rendered_pod_that_drops_a_limit_is_refused(kind) -> None:
    from kubernetes.client import models as k8s
    from mlops_platform.config import load_platform
    from mlops_platform.pods import pod_task

    op = pod_task("t", ["true"], profile="gpu-1", cfg=load_platform())
    op.container_resources = k8s.V1ResourceRequirements(requests={"cpu": "10m"}, limits={"cpu": "1"})
    with pytest.raises(ValueError, match="limit .* is dropped"):
        op.build_pod_request_obj(None, dry_run=True)


# --- 5. files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_pipeline("step:\n" + GOOD_TASK + "step:\n" + GOOD_TASK), "key 'step' appears twice"),
        (_task("      profile: gpu-1\n"), "key 'profile' appears twice"),
        (_task("      env: {A: '1', A: '2'}\n"), "key 'A' appears twice"),
        (_pipeline("step:\n" + GOOD_TASK) + _pipeline("other:\n" + GOOD_TASK), "key 'bad' appears twice"),
        (_task("      <<: {retries: 3}\n"), "merge keys (<<) are not allowed"),
        (_pipeline("step:\n" + GOOD_TASK, extra="  params:\n    yes: {kind: dataset, default: iris}\n"),
         "key True is not a string"),
        (_task("      env: {1: x}\n"), "key 1 is not a string"),
    ],
    ids=["task", "field", "env", "dag", "merge-key", "param-yes", "int-key"],
)
def test_duplicate_and_non_string_keys_are_refused(text, message, tmp_path, kind) -> None:
    _refused(tmp_path, text, message)


def test_only_regular_yaml_files_of_the_folder_are_pipelines(tmp_path, platform_envs) -> None:
    from tests.support.platform_env import YAML_LOADER_FILE as LOADER
    from tests.support.platform_env import load_dagbag
    from tests.support.platform_env import loader_folder as _loader_folder

    outside = tmp_path / "outside.yaml"
    outside.write_text(_pipeline("step:\n" + GOOD_TASK, dag_id="linked") + "# SECRET-CONTENT\n")
    folder = _loader_folder(tmp_path, {
        "good.yaml": _pipeline("step:\n" + GOOD_TASK, dag_id="good"),
        "good.yml": _pipeline("step:\n      profile: gpu-1\n      command: [x]\n", dag_id="good"),
        "other.json": "{}",
    })  # fmt: skip
    (folder / "pipelines" / "linked.yaml").symlink_to(outside)
    (folder / "pipelines" / "sub.yaml").mkdir()
    bag = load_dagbag(folder / LOADER, platform_envs["kind"])
    (error,) = bag.import_errors.values()
    assert "pipelines/good.yml: not a pipeline file" in error and "rename it to .yaml" in error
    assert "pipelines/linked.yaml: a symlink" in error and "SECRET-CONTENT" not in error
    assert "pipelines/other.json: not a pipeline file" in error and "pipelines/sub.yaml: not a pipeline file" in error
    assert set(bag.dags) == {"good"} and bag.dags["good"].get_task("step").pool_slots == 1  # the .yaml one


# --- 7. robustness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("^(a+)+$", "not a group"),
        ("^(x|xx)*$", "not a group"),
        ("^(?:[a-z]+,?)*$", "not a group"),
        (r"^(a)\1$", "groupref is not allowed"),
        ("^(?=a)a$", "assert is not allowed"),
        ("^a*a*a*a*$", "more than 3 quantifiers"),
        ("^(a", "not a regular expression"),
    ],
)
def test_param_patterns_outside_the_safe_subset_are_refused(pattern, message, tmp_path, kind) -> None:
    extra = f"  params:\n    name: {{kind: string, default: a, pattern: '{pattern}'}}\n"
    _refused(tmp_path, _pipeline("step:\n" + GOOD_TASK, extra=extra), "key 'params.name.pattern'", message)


def test_an_allowed_pattern_is_fast_on_the_worst_value_and_conf_text_stays_plain(tmp_path, kind) -> None:
    """The worst pattern of the subset (3 overlapping quantifiers) on a failing value of the
    longest accepted length, and a 1 MB conf value (the pattern only runs on short values); a
    conf value with shell or Python syntax fails the platform's character set."""
    from airflow.sdk.definitions.param import ParamValidationError  # type: ignore[attr-defined]

    extra = "  params:\n    name: {kind: string, default: a, pattern: '^[a-z]*[a-z]*[a-z]*$'}\n"
    param = _build(tmp_path, _pipeline("step:\n" + GOOD_TASK, extra=extra)).params.get_param("name")
    for value in ("a" * 127 + "!", "a" * 1_000_000 + "!", "x; rm -rf /", "$(id)", "a b", "x'y", "a\n"):
        started = time.monotonic()
        with pytest.raises(ParamValidationError):
            param.resolve(value)
        assert time.monotonic() - started < 1.0, value[:20]


def test_an_alias_bomb_is_refused_with_a_short_error_and_the_other_files_load(tmp_path, platform_envs) -> None:
    from tests.support.platform_env import YAML_LOADER_FILE as LOADER
    from tests.support.platform_env import load_dagbag
    from tests.support.platform_env import loader_folder as _loader_folder

    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
    ) + "bomb:\n  description: *i\n  tasks: {}\n"  # fmt: skip
    deep = "deep:\n  tasks:\n    step:\n      env: " + "[" * 200 + "]" * 200 + "\n"
    big = _pipeline("step:\n" + GOOD_TASK, dag_id="big") + "# " + "x" * (70 * 1024) + "\n"
    folder = _loader_folder(tmp_path, {"bomb.yaml": bomb, "deep.yaml": deep, "big.yaml": big,
                                       "good.yaml": _pipeline("step:\n" + GOOD_TASK, dag_id="good")})  # fmt: skip
    started = time.monotonic()
    bag = load_dagbag(folder / LOADER, platform_envs["kind"])
    assert time.monotonic() - started < 60
    (error,) = bag.import_errors.values()
    assert "pipelines/bomb.yaml: refused: more than 20000 YAML nodes once its aliases are expanded" in error
    assert "pipelines/deep.yaml: refused: line 4: nested deeper than 12 levels" in error
    assert "pipelines/big.yaml: refused: larger than 64 KiB" in error
    assert len(error) < 1000 and set(bag.dags) == {"good"}


def test_error_messages_show_a_bounded_excerpt(tmp_path, kind) -> None:
    huge = "x" * 100_000
    message = _refused(tmp_path, _pipeline("step:\n" + GOOD_TASK, extra=f"  doc_md: {huge[:30000]}\n"), "longer than 20000")
    assert len(message) < 400


# --- 8. commands: what runs is the author's, what reaches it from a conf is plain text -------------


def test_a_shell_in_a_yaml_command_gets_only_declared_plain_values(tmp_path, kind) -> None:
    from tests.support.airflow_pods import build_pod

    extra = "  params:\n    name: {kind: string, default: world, pattern: '^.*$'}\n"
    dag = _build(tmp_path, _pipeline("step:\n      profile: cpu\n      command: [sh, -e, -c, 'echo {{ params.name }}']\n", extra=extra))
    pod = build_pod(dag, dag.get_task("step"), conf={"name": "there"})
    assert pod["spec"]["containers"][0]["args"] == ["-e", "-c", "echo there"]
    from airflow.sdk.definitions.param import ParamValidationError  # type: ignore[attr-defined]

    for value in ("x; cat /etc/passwd", "`id`", "$(id)", "a|b", "a&b", "a>b", "a\nb", "a b"):
        with pytest.raises(ParamValidationError):
            dag.params.get_param("name").resolve(value)


# --- 9. Base Command images ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    ["docker.io/library/python:3.11", "ghcr.io/org/repo:1.0", "nvcr.io.evil.com/org/repo:1.0",
     "localhost:5000/org/repo:1.0", "evil.com/nvidia/pytorch:25.01", "NVCR.IO/nvidia/pytorch:25.01",
     "nvidia/pytorch:latest", "nvidia/pytorch:25.01-py3\n", "nvcr.io/nvidia/pytorch@sha256:" + "a" * 64],
)  # fmt: skip
def test_base_command_images_come_from_nvcr_io_only(image) -> None:
    import jsonschema
    from mlops_platform.basecommand.spec import BaseCommandConfigError, job_spec
    from mlops_platform.names import NGC_IMAGE

    assert not jsonschema.Draft202012Validator(NGC_IMAGE.schema()).is_valid(image)
    with pytest.raises(BaseCommandConfigError, match="image"):
        job_spec(name="j", image=image, command=["true"], instance_type="i", ace="a", time_limit_seconds=60)


def test_base_command_images_of_nvcr_io_pass() -> None:
    from mlops_platform.names import NGC_IMAGE

    for image in ("nvidia/pytorch:25.01-py3", "nvcr.io/nvidia/pytorch:25.01-py3", "my-org/team/trainer:1.2.3"):
        assert NGC_IMAGE.ok(image), image


# --- 10. low -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("      command: [" + ", ".join(["x"] * 300) + "]\n", "more than 256 items"),
        ("      command: [x, " + "y" * 9000 + "]\n", "longer than 8192 characters"),
        ("      env: {TOKEN: x}\n      secret_env: {TOKEN: hf-token/token}\n", "TOKEN is also set under env"),
    ],
    ids=["many-arguments", "huge-argument", "env-and-secret"],
)
def test_low_severity_cases_are_refused(lines, message, tmp_path, kind) -> None:
    body = "      profile: cpu\n" if "command" in lines else GOOD_TASK
    _refused(tmp_path, _task(lines, body=body), "task 'step'", message)


@pytest.mark.parametrize("mount", ["/", "/etc", "/usr/lib", "/proc/self", "/data/../etc", "relative", "/data\n"])
def test_base_command_mounts_outside_the_allowed_places_are_refused(mount) -> None:
    from mlops_platform.basecommand.spec import BaseCommandConfigError, job_spec
    from mlops_platform.params import datasets_param

    with pytest.raises(BaseCommandConfigError, match="mount"):
        job_spec(name="j", image="nvidia/pytorch:25.01-py3", command=["true"], instance_type="i", ace="a",
                 time_limit_seconds=60, datasets=[{"id": 1, "mount": mount}])  # fmt: skip
    from airflow.sdk.definitions.param import ParamValidationError  # type: ignore[attr-defined]

    with pytest.raises(ParamValidationError):
        datasets_param().resolve([{"id": 1, "mount": mount}])


def test_ml_serving_smoke_input_cells_are_scalars(dagbags) -> None:
    from airflow.sdk.definitions.param import ParamValidationError  # type: ignore[attr-defined]

    param = dagbags["kind"].dags["ml_serving"].params.get_param("smoke_input")
    good = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, "x"], [None, True]]}}
    assert param.resolve(good) == good
    for cell in ({"$ne": 1}, [1, 2], "x" * 300):
        with pytest.raises(ParamValidationError):
            param.resolve({"dataframe_split": {"columns": ["a"], "data": [[cell]]}})


# --- 6. ml_serving ownership --------------------------------------------------------------------


@pytest.fixture()
def serving_cfg(platform_envs):
    from mlops_platform.config import parse_platform

    env = platform_envs["production.example"]
    doc = copy.deepcopy(env.platform)
    doc["serving"] = {**doc["serving"], "enabled": True, "domain": "models.example.com"}
    with env.active():
        yield parse_platform(doc, "platform.json")


@pytest.fixture()
def fake_kube(monkeypatch):
    from mlops_platform import serving

    from tests.support.fake_kube import FakeKube

    fake = FakeKube()
    monkeypatch.setattr(serving, "_clients", lambda: (fake.api("Deployment"), fake.api("Service"), fake.api("Ingress")))
    return fake


def test_ml_serving_labels_what_it_creates_and_never_touches_what_it_did_not(serving_cfg, fake_kube) -> None:
    from mlops_platform import serving

    objects = serving.serving_objects(serving_cfg, "iris", "1")
    assert all(o["metadata"]["labels"][serving.OWNER_LABEL] == serving.OWNER for o in objects)
    ns = objects[0]["metadata"]["namespace"]
    # Someone else's Ingress of that name (no owner label): neither snapshot+apply nor apply alone patch it.
    foreign = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "iris-serving", "namespace": ns, "labels": {"app": "other"}}, "spec": {"rules": []}}  # fmt: skip
    fake_kube.create("Ingress", ns, copy.deepcopy(foreign))
    with pytest.raises(serving.NotOwned, match="Ingress .*/iris-serving exists and was not created by ml_serving"):
        serving.snapshot(objects)
    with pytest.raises(serving.NotOwned):
        serving.apply(objects)
    assert fake_kube.objects[("Ingress", ns, "iris-serving")]["metadata"]["labels"] == {"app": "other"}
    assert not any(c.startswith("patch Ingress") for c in fake_kube.calls)
    # A snapshot that says "absent" never deletes an object that is not ml_serving's.
    snap = [{"kind": "Ingress", "name": "iris-serving", "namespace": ns, "object": None}]
    with pytest.raises(serving.NotOwned):
        serving.restore(snap)
    assert ("Ingress", ns, "iris-serving") in fake_kube.objects


def test_model_names_that_collide_with_the_chart_are_refused(serving_cfg) -> None:
    from mlops_platform import serving

    release = serving_cfg.release
    for model in (release, f"{release}-airflow-mlops", f"{release}-x"):
        if len(model) > 40:
            continue
        with pytest.raises(ValueError, match="collide with the chart's own objects"):
            serving.serving_objects(serving_cfg, model, "1")
    with pytest.raises(ValueError, match="not a valid model name"):
        serving.serving_objects(serving_cfg, "iris\n", "1")


# --- the README states the boundaries ------------------------------------------------------------


def test_the_readme_states_what_authors_and_triggers_can_and_cannot_do() -> None:
    text = (paths.DAGS_DIR / "README.md").read_text()
    for heading in ("### What a YAML pipeline author can and cannot do", "### What a DAG trigger can and cannot do"):
        assert heading in text, heading
    from mlops_platform.names import RESERVED_ENV_PREFIXES
    from mlops_platform.yaml_pipelines import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES

    section = text.split("### What a YAML pipeline author can and cannot do", 1)[1]
    for fact in (f"{MAX_FILE_BYTES // 1024} KiB", f"{MAX_NODES}", f"{MAX_DEPTH} levels", *RESERVED_ENV_PREFIXES):
        assert fact in section, fact
