"""gpu_sweep's variants: each variant holds exactly its profile's GPUs, the list is validated
(conf and variant files), and the pods of every variant are what the plan says.

The scheduler takes `pool_slots` from the serialized task: checked on the DAG as Airflow
serializes it. tests/cluster/test_pipelines.py runs the sweep with Airflow against the control plane.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.dags.dag_tasks import SAMPLE_RUN_ID, python_xcoms, xcoms_for
from tests.support import paths
from tests.support.airflow_pods import build_pod
from tests.support.platform_env import load_dagbag

DAG_ID = "gpu_sweep"
VARIANTS = [
    {"profile": "gpu-2", "name": "a", "seed": 1, "params": {"max_depth": 2}},
    {"profile": "gpu-8", "name": "b", "model_type": "gradient_boosting"},
    {"profile": "gpu-2", "name": "c", "seed": 3, "params": {"max_depth": 8, "criterion": "entropy"}},
]


@pytest.fixture(scope="module")
def prod(platform_envs, dagbags):
    return platform_envs["production.example"], dagbags["production.example"].dags[DAG_ID]


def _pod(dag, task_id: str, conf: dict, index: int, xcoms: dict) -> dict:
    return build_pod(dag, dag.get_task(task_id), conf=conf, map_index=index, run_id=SAMPLE_RUN_ID, xcoms=xcoms)


def _env(pod: dict) -> dict:
    return {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}


def test_each_variant_trains_in_its_profiles_task_with_exactly_its_gpus(prod) -> None:
    env, dag = prod
    from airflow.serialization.serialized_objects import SerializedDAG

    conf = {"variants": VARIANTS}
    xcoms = python_xcoms(dag, conf, SAMPLE_RUN_ID)
    # the plan's entries: gpu-2 has two variants, gpu-8 one, gpu-1 and gpu-4 none (skipped)
    assert [len(xcoms[f"variants_gpu_{n}"]) for n in (1, 2, 4, 8)] == [0, 2, 0, 1]
    assert len(xcoms["variants_each"]) == 3  # prepare and evaluate: one index per variant
    serialized = SerializedDAG.from_dict(SerializedDAG.to_dict(dag))
    gpus = {p: spec["gpus"] for p, spec in env.platform["profiles"].items()}
    seen = {}
    with env.active():
        for profile in ("gpu-2", "gpu-8"):
            task_id = "train_" + profile.replace("-", "_")
            # what the scheduler accounts: the serialized task's pool and slots
            assert serialized.get_task(task_id).pool_slots == gpus[profile]
            assert serialized.get_task(task_id).pool == env.platform["gpuPool"]["name"]
            for index in range(len(xcoms[f"variants_{profile.replace('-', '_')}"])):
                pod = _pod(dag, task_id, conf, index, xcoms_for(dag, conf))
                (container,) = pod["spec"]["containers"]
                assert container["resources"]["limits"]["nvidia.com/gpu"] == str(gpus[profile])
                args = container["args"]
                tags = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--tag")
                assert tags["mlops.sweep_profile"] == profile
                seen[tags["mlops.sweep_variant"]] = (profile, args, _env(pod)["MLOPS_WORKSPACE_SUBPATH"])
    assert sorted(seen) == ["a", "b", "c"]
    profile, args, workspace = seen["c"]
    assert profile == "gpu-2" and workspace.endswith("/c")
    assert args[args.index("--model-type") + 1] == "random_forest"  # the DAG's default model type
    assert {"random_state=3", "max_depth=8", "criterion=entropy"} <= set(args)
    profile, args, workspace = seen["b"]
    assert args[args.index("--model-type") + 1] == "gradient_boosting" and workspace.endswith("/b")
    # the other serialized trains keep their own profile's slots too
    for n in (1, 4):
        assert serialized.get_task(f"train_gpu_{n}").pool_slots == n


def test_prepare_and_evaluate_run_per_variant_in_its_workspace(prod) -> None:
    env, dag = prod
    conf = {"variants": VARIANTS}
    xcoms = xcoms_for(dag, conf)
    with env.active():
        dirs = [
            _env(_pod(dag, t, conf, i, xcoms))["MLOPS_WORKSPACE_SUBPATH"]
            for t in ("prepare", "evaluate")
            for i in range(3)
        ]
    assert [d.rsplit("/", 1)[1] for d in dirs] == ["a", "b", "c"] * 2
    assert dag.get_task("evaluate").trigger_rule == "none_failed_min_one_success"


@pytest.mark.parametrize(
    ("variants", "key"),
    [
        ([], "variants"),
        ([{"profile": "gpu-3"}], "profile"),
        ([{"profile": "gpu-1", "image": "x"}], "image"),
        ([{"profile": "gpu-1", "params": {"random_state": 1}}], "random_state"),
        ([{"profile": "gpu-1", "params": {"max_depth": "$(reboot)"}}], "max_depth"),
        ([{"profile": "gpu-1", "model_type": "knn"}], "model_type"),
        ([{"profile": "gpu-1", "seed": -1}], "seed"),
        ([{"profile": "gpu-1", "name": "../x"}], "name"),
        ([{"profile": "gpu-1"}] * 17, "variants"),
    ],
)
def test_bad_variants_are_refused_at_trigger(prod, variants, key) -> None:
    from airflow.exceptions import ParamValidationError

    env, dag = prod
    with env.active(), pytest.raises(ParamValidationError, match="variants"):
        _pod(dag, "register", {"variants": variants}, -1, xcoms_for(dag, {}))
    from mlops_platform.sweep import SweepConfigError, check_variants

    with pytest.raises(SweepConfigError, match=key):
        check_variants(variants, ["gpu-1", "gpu-2"], "conf")


def test_same_names_are_refused_by_the_plan(prod) -> None:
    _env, dag = prod
    from mlops_platform.sweep import SweepConfigError

    with pytest.raises(SweepConfigError, match="'variants\\[\\].name': x used more than once"):
        python_xcoms(dag, {"variants": [{"profile": "gpu-1", "name": "x"}, {"profile": "gpu-2", "name": "x"}]}, "r")


def test_the_shipped_variant_files_are_valid_everywhere(platform_envs) -> None:
    from mlops_platform.sweep import load_variant_file, variant_files

    folder = paths.DAGS_DIR / "sweeps"
    assert variant_files(folder), "at least one example variant file ships"
    for env in platform_envs.values():
        profiles = [p for p, s in env.platform["profiles"].items() if s["gpus"]]
        for name in variant_files(folder):
            assert load_variant_file(folder / name, profiles)


@pytest.fixture()
def folder_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(paths.DAGS_DIR / f"{DAG_ID}.py", folder)
    (folder / "sweeps").mkdir()
    return folder


def test_a_variants_file_replaces_the_list(platform_envs, folder_copy: Path) -> None:
    env = platform_envs["production.example"]
    (folder_copy / "sweeps" / "two.yaml").write_text(
        "variants:\n  - {name: small, profile: gpu-1, seed: 5}\n  - {name: big, profile: gpu-4, params: {max_depth: 3}}\n"
    )
    dag = load_dagbag(folder_copy / f"{DAG_ID}.py", env).dags[DAG_ID]
    assert dag.params.get_param("variants_file").schema["enum"] == ["", "two.yaml"]
    xcoms = python_xcoms(dag, {"variants_file": "two.yaml"}, SAMPLE_RUN_ID)
    assert [len(xcoms[f"variants_gpu_{n}"]) for n in (1, 2, 4, 8)] == [1, 0, 1, 0]
    assert [e["env_vars"]["MLOPS_WORKSPACE_SUBPATH"].rsplit("/", 1)[1] for e in xcoms["variants_each"]] == ["small", "big"]


def test_a_bad_variants_file_fails_the_run_naming_file_and_key(platform_envs, folder_copy: Path) -> None:
    env = platform_envs["production.example"]
    (folder_copy / "sweeps" / "bad.yaml").write_text("variants:\n  - {profile: gpu-1}\n  - {profile: gpu-16}\n")
    (folder_copy / "sweeps" / "shape.yaml").write_text("- {profile: gpu-1}\n")
    bag = load_dagbag(folder_copy / f"{DAG_ID}.py", env)
    assert bag.import_errors == {}, "a bad variants file never breaks the DAG"
    dag = bag.dags[DAG_ID]
    from mlops_platform.sweep import SweepConfigError

    with pytest.raises(SweepConfigError, match=r"sweeps/bad.yaml: key 'variants\[1\].profile'"):
        python_xcoms(dag, {"variants_file": "bad.yaml"}, SAMPLE_RUN_ID)
    with pytest.raises(SweepConfigError, match="sweeps/shape.yaml: the file must hold exactly one key 'variants'"):
        python_xcoms(dag, {"variants_file": "shape.yaml"}, SAMPLE_RUN_ID)
