"""YAML pipelines (dags/pipelines/*.yaml -> dags/yaml_pipelines.py -> dag-factory): the shipped
files build with the platform's helpers, the YAML twin of nfs_dataset_example builds the same pods,
and every malformed or unsafe file is an import error naming the file, the task and the key while
every other DAG still loads."""

from __future__ import annotations

import copy
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support import paths
from tests.support.airflow_pods import build_pod
from tests.support.platform_env import YAML_LOADER_FILE, expected_dags, load_dagbag, loader_folder

RUN_ID = "manual__2026-03-04T05:06:07.890123+00:00"


def _yaml_dag_ids(folder: Path = paths.DAGS_DIR) -> set[str]:
    from mlops_platform.yaml_pipelines import pipeline_files

    return {p.stem for p in pipeline_files(folder)}


def test_at_least_two_pipelines_ship() -> None:
    assert {"nfs_dataset_yaml", "train_gpu_yaml"} <= _yaml_dag_ids()


def test_shipped_pipelines_are_platform_pod_tasks(dagbags, platform_envs) -> None:
    from mlops_platform.pods import MlopsPodOperator

    for env_name, bag in dagbags.items():
        profiles = platform_envs[env_name].platform["profiles"]
        for dag_id in _yaml_dag_ids():
            dag = bag.dags[dag_id]
            assert "yaml" in dag.tags and "dagfactory" not in dag.tags, dag.tags
            assert dag.catchup is False and dag.max_active_runs == 4
            for task in dag.tasks:
                assert type(task) is MlopsPodOperator, f"{dag_id}.{task.task_id}: {type(task)}"
                gpus = profiles[task.labels["mlops.airflow.apache.org/profile"]]["gpus"]
                assert task.pool_slots == max(1, gpus)
    train = dagbags["kind"].dags["train_gpu_yaml"]
    assert train.get_task("train").pool == "gpu" and train.get_task("train").pool_slots == 1
    assert {t.task_id: sorted(t.upstream_task_ids) for t in train.tasks} == {
        "prepare": [],
        "train": ["prepare"],
        "evaluate": ["train"],
        "cleanup": ["evaluate"],
    }
    # time limit: the pod's deadline, and the task's execution timeout above it
    pod = _pod(platform_envs["kind"], train, "train", {})
    assert pod["spec"]["activeDeadlineSeconds"] == 3600
    assert train.get_task("train").execution_timeout.total_seconds() == 3600 + 3600
    assert {"name": "LOG_LEVEL", "value": "info"} in pod["spec"]["containers"][0]["env"]


def _pod(env, dag, task_id: str, conf: dict[str, Any]) -> dict[str, Any]:
    with env.active():
        return build_pod(dag, dag.get_task(task_id), conf=conf, run_id=RUN_ID)


def _without_dag_id(pod: dict[str, Any], dag_id: str) -> dict[str, Any]:
    """The pod with its DAG id replaced (labels, workspace sub-path) and its random name removed."""
    pod = copy.deepcopy(pod)
    pod["metadata"].pop("name")
    pod["metadata"]["labels"]["dag_id"] = "<dag>"
    for env in pod["spec"]["containers"][0]["env"]:
        if env["name"] == "MLOPS_WORKSPACE_SUBPATH":
            env["value"] = env["value"].replace(dag_id + "/", "<dag>/", 1)
    return pod


OPERATOR_FIELDS = (
    "pool",
    "pool_slots",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "execution_timeout",
    "trigger_rule",
    "owner",
    "namespace",
    "service_account_name",
    "startup_timeout_seconds",
    "schedule_timeout_seconds",
    "on_finish_action",
    "get_logs",
    "do_xcom_push",
    "allowed_image_prefix",
    "allowed_secret_refs",
)


@pytest.mark.parametrize("conf", [{}, {"path": "wine/part-1.csv"}], ids=["defaults", "path"])
def test_yaml_twin_builds_the_same_pods_as_the_python_dag(dagbags, platform_envs, conf) -> None:
    """nfs_dataset_yaml.yaml is nfs_dataset_example.py in YAML: same pod (image, command,
    template, security, volumes, env, labels), same pool and slots, same params, per environment."""
    for env_name, bag in dagbags.items():
        env = platform_envs[env_name]
        py, yml = bag.dags["nfs_dataset_example"], bag.dags["nfs_dataset_yaml"]
        assert [t.task_id for t in py.tasks] == [t.task_id for t in yml.tasks] == ["read_dataset"]
        assert py.params.dump() == yml.params.dump()
        assert py.params.get_param("path").schema == yml.params.get_param("path").schema
        assert py.schedule == yml.schedule and py.catchup == yml.catchup
        assert py.default_args == yml.default_args
        py_task, yml_task = py.get_task("read_dataset"), yml.get_task("read_dataset")
        for field in OPERATOR_FIELDS:
            assert getattr(py_task, field) == getattr(yml_task, field), f"{env_name}: {field}"
        py_pod = _without_dag_id(_pod(env, py, "read_dataset", conf), "nfs_dataset_example")
        yml_pod = _without_dag_id(_pod(env, yml, "read_dataset", conf), "nfs_dataset_yaml")
        assert yml_pod == py_pod, env_name
        assert py_pod["spec"]["containers"][0]["args"][-1].endswith("/" + (conf.get("path") or "iris"))


# --- bad files ----------------------------------------------------------------------------------

GOOD_TASK = """\
      profile: cpu
      command: [mlops-trainer, --version]
"""


def _pipeline(dag_id: str, tasks: str, extra: str = "") -> str:
    return f"{dag_id}:\n  description: a test pipeline\n{extra}  tasks:\n{textwrap.indent(tasks, '    ')}"


def _step(lines: str, key: str, message: str, body: str = GOOD_TASK) -> tuple[str, list[str]]:
    """A file whose task `step` has `body` plus `lines`, and what its error must name."""
    return _pipeline("bad", "step:\n" + body + lines), ["bad.yaml", "task 'step'", f"key '{key}'", message]


def _dag_level(lines: str, key: str, message: str) -> tuple[str, list[str]]:
    return _pipeline("bad", "step:\n" + GOOD_TASK, extra=lines), ["bad.yaml", f"key '{key}'", message]


CYCLE = "".join(f"{t}:\n{GOOD_TASK}      dependencies: [{d}]\n" for t, d in (("a", "c"), ("b", "a"), ("c", "b")))
BAD_FILES = {
    "unknown-key": _step("      gpus: 4\n", "gpus", "unknown key"),
    "unknown-dag-key": _dag_level("  schedule_interval: '@daily'\n", "schedule_interval", "unknown key"),
    "unknown-profile": _step("", "profile", "unknown profile 'gpu-3'; this environment defines: cpu, gpu-1",
                             body="      profile: gpu-3\n      command: [mlops-trainer, --version]\n"),
    "shell-string": _step("", "command", "never a shell string",
                          body="      profile: cpu\n      command: echo hello && rm -rf /\n"),
    "conn-template": _step("", "command[1]", "conn.db.password is not allowed in a YAML pipeline",
                           body="      profile: cpu\n      command: [echo, '{{ conn.db.password }}']\n"),
    "latest-tag": _step("      image: trainer:latest\n", "image", "'latest'"),
    "untagged-image": _step("      image: trainer\n", "image", "no tag"),
    "other-registry": _step("      image: docker.io/library/python:3.11\n", "image", "not a name inside the platform registry"),
    "cycle": (_pipeline("bad", CYCLE), ["bad.yaml", "task 'b'", "key 'dependencies'", "dependency cycle a -> c -> b -> a"]),
    "unknown-dependency": _step("      dependencies: [nope]\n", "dependencies", "'nope' is not a task of this file"),
    "reserved-env": _step("      env: {MLFLOW_TRACKING_URI: http://elsewhere}\n", "env.MLFLOW_TRACKING_URI", "is reserved by the platform"),
    "secret-not-allowed": _step("      secret_env: {TOKEN: db-admin/password}\n", "secret_env.TOKEN",
                                "not in the chart's pipelines.secrets"),
    "timeout-bounds": _step("      timeout_seconds: 5\n", "timeout_seconds", "less than the minimum of 60"),
    "free-text-param": _dag_level("  params:\n    name: {kind: string, default: x}\n", "params.name",
                                  "needs `enum` or `pattern`"),
    "bad-param-default": _dag_level("  params:\n    data: {kind: dataset, default: mnist}\n", "params.data",
                                    "default 'mnist'"),
    "dag-id-not-file-name": (
        _pipeline("other_name", "step:\n" + GOOD_TASK),
        ["bad.yaml", "key 'other_name'", "must be the file name 'bad'"],
    ),
    "undeclared-param": _step("", "command[1]", "params.dataset is not declared",
                              body="      profile: cpu\n      command: [mlops-trainer, '{{ params.dataset }}']\n"),
    "not-yaml": ("bad: [unclosed\n", ["bad.yaml", "not readable YAML"]),
    "two-dags": (
        _pipeline("bad", "step:\n" + GOOD_TASK) + _pipeline("bad2", "step:\n" + GOOD_TASK),
        ["bad.yaml", "holds one DAG", "keys bad, bad2"],
    ),
    "empty": ("# nothing yet\n", ["bad.yaml", "holds one DAG", "found NoneType"]),
    "no-retries": _step("      retries: 0\n", "retries", "less than the minimum of 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_an_import_error_naming_file_task_and_key(case, tmp_path, platform_envs) -> None:
    text, expected = BAD_FILES[case]
    good = _pipeline("good", "step:\n" + GOOD_TASK)
    folder = loader_folder(tmp_path, {"bad.yaml": text, "good.yaml": good})
    bag = load_dagbag(folder / YAML_LOADER_FILE, platform_envs["kind"])
    (error,) = bag.import_errors.values()
    assert error.startswith("YamlPipelineError: pipelines/bad.yaml: "), error
    for part in expected:
        assert part in error, f"{part!r} not in {error!r}"
    assert set(bag.dags) == {"good"}, "the good file of the same folder still loads"


def test_a_dag_id_of_a_python_file_is_refused(tmp_path, platform_envs) -> None:
    folder = loader_folder(tmp_path, {"ml_training.yaml": _pipeline("ml_training", "step:\n" + GOOD_TASK)})
    (folder / "ml_training.py").write_text("# stands for the Python DAG file\n")
    bag = load_dagbag(folder / YAML_LOADER_FILE, platform_envs["kind"])
    (error,) = bag.import_errors.values()
    assert "pipelines/ml_training.yaml: key 'ml_training': the DAG id is already used by ml_training.py" in error


def test_bad_files_never_break_the_other_dags(tmp_path, platform_envs) -> None:
    """In a copy of the real DAG folder: two bad files give one import error (for the loader
    file) naming both; every Python DAG and every good YAML pipeline is still in the bag."""
    folder = tmp_path / "dags"
    shutil.copytree(paths.DAGS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "pipelines" / "bad_profile.yaml").write_text(BAD_FILES["unknown-profile"][0].replace("bad:", "bad_profile:"))
    (folder / "pipelines" / "bad_cycle.yaml").write_text(BAD_FILES["cycle"][0].replace("bad:", "bad_cycle:"))
    bag = load_dagbag(folder, platform_envs["production.example"])
    assert list(bag.import_errors) == [str(folder / YAML_LOADER_FILE)] or [Path(k).name for k in bag.import_errors] == [
        YAML_LOADER_FILE
    ]
    (error,) = bag.import_errors.values()
    assert "pipelines/bad_cycle.yaml: task 'b': key 'dependencies'" in error
    assert "pipelines/bad_profile.yaml: task 'step': key 'profile'" in error
    assert set(bag.dags) == expected_dags(folder) - {"bad_profile", "bad_cycle"}
    assert {"nfs_dataset_yaml", "train_gpu_yaml", "ml_training"} <= set(bag.dags)


def test_a_new_yaml_file_is_covered_without_a_test_edit(tmp_path, platform_envs) -> None:
    """Discovery: a YAML file dropped into (a copy of) pipelines/ is expected, built and its pod
    built and validated like every other pod task (tests/dags/test_pods.py machinery)."""
    from tests.dags.dag_tasks import built_pods as _built_pods
    from tests.support.k8s import restricted_violations, validate_objects

    folder = tmp_path / "dags"
    shutil.copytree(paths.DAGS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "pipelines" / "throwaway_yaml.yaml").write_text(
        _pipeline("throwaway_yaml", "hello:\n      profile: gpu-2\n      command: [mlops-trainer, --version]\n")
    )
    assert "throwaway_yaml" in expected_dags(folder)
    env = platform_envs["kind"]
    bag = load_dagbag(folder, env)
    assert bag.import_errors == {}, bag.import_errors
    assert set(bag.dags) == expected_dags(folder)
    pods = [p for p in _built_pods(env, bag) if p[1].dag_id == "throwaway_yaml"]
    ((label, _dag, task, _index, _conf, pod),) = pods
    validate_objects([{**pod, "__source__": label}], versions=paths.KUBE_VERSIONS)
    assert restricted_violations(pod["spec"], label) == []
    assert task.pool_slots == 2 and pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"


def test_an_image_of_the_registry_and_a_secret_of_the_allow_list(tmp_path, platform_envs) -> None:
    env = platform_envs["production.example"]
    text = _pipeline(
        "imaged",
        "step:\n" + GOOD_TASK + "      image: team/tool:1.4.2\n      secret_env: {HF_TOKEN: hf-token/token}\n",
    )
    bag = load_dagbag(loader_folder(tmp_path, {"imaged.yaml": text}) / YAML_LOADER_FILE, env)
    assert bag.import_errors == {}
    pod = _pod(env, bag.dags["imaged"], "step", {})
    (container,) = pod["spec"]["containers"]
    assert container["image"] == f"{env.platform['images']['prefix']}/team/tool:1.4.2"
    secret = [e for e in container["env"] if e["name"] == "HF_TOKEN"]
    assert secret == [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token", "optional": False}}}
    ]


def test_the_readme_yaml_example_builds(tmp_path, platform_envs) -> None:
    """dags/README.md, "YAML pipelines": the example is a working pipeline file."""
    import re

    text = (paths.DAGS_DIR / "README.md").read_text()
    section = text.split("### YAML pipelines", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    folder = loader_folder(tmp_path, {"my_yaml_pipeline.yaml": example})
    # production.example allows Secret hf-token/token (pipelines.secrets) used by the example.
    bag = load_dagbag(folder / YAML_LOADER_FILE, platform_envs["production.example"])
    assert bag.import_errors == {}, bag.import_errors
    dag = bag.dags["my_yaml_pipeline"]
    assert {t.task_id: t.pool_slots for t in dag.tasks} == {"prepare": 1, "train": 1}
    assert dag.get_task("train").pool == "gpu"


def test_dag_factory_telemetry_is_off_in_the_deployed_airflow() -> None:
    """dag-factory's plugin would report DAG runs to an outside host: the chart's airflow.cfg
    turns it off (airflow.config.dag_factory.enable_telemetry), for every environment file."""
    import configparser

    from tests.support.helm import render_chart
    from tests.support.overlays import with_overlays
    from tests.support.platform_env import ENVIRONMENTS, NAMESPACE, RELEASE

    for name in ENVIRONMENTS:
        objects = render_chart(
            values_files=with_overlays(paths.VALUES_DIR / f"{name}.yaml"),
            release=RELEASE,
            namespace=NAMESPACE,
            include_subchart=True,
        )
        (cm,) = [o for o in objects if o["kind"] == "ConfigMap" and "airflow.cfg" in (o.get("data") or {})]
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read_string(cm["data"]["airflow.cfg"])
        assert cfg.get("dag_factory", "enable_telemetry") == "False", name


def test_the_loader_parses_without_dag_warnings_in_a_fresh_interpreter(platform_envs, tmp_path) -> None:
    """dag-factory 1.1.0 imports Airflow 2 paths (deprecated aliases on Airflow 3) when first
    imported: silenced, so the DAG processor records no warning for yaml_pipelines.py."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        f"sys.path.append({str(paths.DAGS_DIR)!r})\n"
        "from airflow.models.dagbag import DagBag\n"
        f"bag = DagBag({str(paths.DAGS_DIR / YAML_LOADER_FILE)!r}, include_examples=False, safe_mode=False)\n"
        "print(json.dumps({'dags': sorted(bag.dags), 'errors': bag.import_errors,\n"
        "                  'warnings': {k: list(map(str, v)) for k, v in bag.captured_warnings.items()}}))\n"
    )
    env = platform_envs["kind"]
    run_env = {**os.environ, "MLOPS_PLATFORM_DIR": str(env.directory), "MLOPS_POD_TEMPLATES_DIR": str(env.templates_dir),
               "AIRFLOW_HOME": str(tmp_path)}  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], env=run_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"dags": sorted(_yaml_dag_ids()), "errors": {}, "warnings": {}}
