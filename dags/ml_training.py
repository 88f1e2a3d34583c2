"""ml_training: prepare -> train (on the chosen profile) -> evaluate -> register, then cleanup."""

from __future__ import annotations

import airflow.providers.cncf.kubernetes.operators.pod  # noqa: F401  (pre-imported by the DAG processor before it forks)
from airflow.sdk import DAG, chain
from mlops_platform.common import RUN_TAG_ARGS
from mlops_platform.config import load_platform
from mlops_platform.params import (
    dataset_param,
    int_param,
    model_name_param,
    model_type_param,
    profile_param,
    string_param,
)
from mlops_platform.pods import branch_on_profile, cleanup_task, pod_task, profile_tasks, trainer_command

cfg = load_platform()

with DAG(
    **cfg.dag_args("ml_training", "training"),
    params={
        "profile": profile_param(cfg),
        "dataset": dataset_param(),
        "model_type": model_type_param("logistic_regression"),
        "model_name": model_name_param("iris"),
        "seed": int_param(42, 0, 2**31 - 1, "Random seed of the train/test split"),
        "experiment": string_param(
            "airflow-mlops", r"^[A-Za-z0-9][A-Za-z0-9_. -]{0,62}$", "MLflow experiment", max_length=63
        ),
    },
    doc_md=__doc__
    + """

Every step is a pod of the trainer image (`mlops-trainer <step> --workspace /workspace`); the
steps share the run's own workspace directory `<dag_id>/<run_id>` on the workspace volume
(`subPathExpr`). `train` runs on the profile given in the run's conf (`cpu`, `gpu-1`, ...):
one task per profile behind the `choose_profile` branch, so each takes exactly its GPUs as
slots of the GPU pool. `register` moves the `champion` alias only when the new version wins.
`cleanup` deletes the run's workspace contents whatever happened (`all_done`).
""",
    **cfg.dag_defaults(),
) as dag:
    prepare = pod_task(
        "prepare",
        trainer_command(cfg, "prepare", "--dataset", "{{ params.dataset }}", "--seed", "{{ params.seed }}"),
        profile=cfg.default_profile,
        cfg=cfg,
    )
    choose = branch_on_profile("train", cfg.profile_names)
    trains = profile_tasks(
        "train",
        trainer_command(
            cfg,
            "train",
            "--model-type",
            "{{ params.model_type }}",
            "--experiment",
            "{{ params.experiment }}",
            "--run-name",
            "{{ dag.dag_id }}-{{ run_id | mlops_path_segment }}",
            *RUN_TAG_ARGS,
        ),
        profiles=cfg.profile_names,
        cfg=cfg,
    )
    evaluate = pod_task(
        "evaluate",
        trainer_command(cfg, "evaluate"),
        profile=cfg.default_profile,
        cfg=cfg,
        trigger_rule="none_failed_min_one_success",
    )
    register = pod_task(
        "register",
        trainer_command(cfg, "register", "--model-name", "{{ params.model_name }}"),
        profile=cfg.default_profile,
        cfg=cfg,
    )
    cleanup = cleanup_task(cfg)
    chain(prepare, choose, list(trains.values()), evaluate, register, cleanup)
