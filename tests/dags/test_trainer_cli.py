"""The DAGs' trainer commands, rendered as in the cluster, are accepted by the trainer's own
argument parser (images/trainer: `mlops-trainer <step> --workspace DIR ...`), and the choices
the DAG params offer are the ones the trainer accepts."""

from __future__ import annotations

import sys

import pytest

from tests.dags.dag_tasks import SAMPLE_CONFS, SAMPLE_RUN_ID, pod_tasks, xcoms_for
from tests.support import paths
from tests.support.airflow_pods import build_pod

TRAINER_SRC = paths.IMAGES_DIR / "trainer" / "src"


@pytest.fixture(scope="module")
def trainer_cli():
    sys.path.insert(0, str(TRAINER_SRC))
    try:
        from mlops_trainer import cli, models  # argparse only: no MLflow import at module level
    finally:
        sys.path.remove(str(TRAINER_SRC))
    return cli, models


def test_rendered_trainer_commands_parse(trainer_cli, platform_envs, dagbags) -> None:
    cli, _ = trainer_cli
    env = platform_envs["production.example"]
    parser = cli._parser()
    seen = set()
    with env.active():
        for dag, task, index in pod_tasks(dagbags["production.example"]):
            for conf in SAMPLE_CONFS.get(dag.dag_id, [{}]):
                pod = build_pod(
                    dag, task, conf=conf, map_index=index, run_id=SAMPLE_RUN_ID, xcoms=xcoms_for(dag, conf)
                )
                argv = pod["spec"]["containers"][0]["command"] + pod["spec"]["containers"][0].get("args", [])
                if argv[0] != "mlops-trainer" or dag.dag_id == "run_job":  # run_job: the conf's command
                    continue
                try:
                    args = parser.parse_args(argv[1:])
                except SystemExit as exc:
                    pytest.fail(f"{dag.dag_id}.{task.task_id}: mlops-trainer rejects {argv}: exit {exc.code}")
                assert str(args.workspace) == env.platform["workspace"]["mountPath"]
                seen.add(args.step)
    assert seen == {"prepare", "train", "evaluate", "register", "predict"}


def test_param_choices_match_the_trainer(trainer_cli, dagbags) -> None:
    _, models = trainer_cli
    bag = dagbags["production.example"]
    for dag_id in ("ml_training", "gpu_sweep", "ml_inference"):
        params = bag.dags[dag_id].params
        schema = params.get_param("dataset").schema
        assert set(schema["enum"]) <= set(models.DATASETS), dag_id
        if "model_type" in params:
            assert set(params.get_param("model_type").schema["enum"]) <= set(models.MODEL_TYPES), dag_id
