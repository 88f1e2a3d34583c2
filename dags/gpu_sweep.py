"""gpu_sweep: the same training on gpu-1, gpu-2, gpu-4 and gpu-8 in parallel, then the best one."""

from __future__ import annotations

from typing import Any

import airflow.providers.cncf.kubernetes.operators.pod  # noqa: F401  (pre-imported by the DAG processor before it forks)
import pendulum
from airflow.sdk import DAG, Param, chain, task
from mlops_platform.common import RUN_TAG_ARGS, WORKSPACE_SUBPATH_TEMPLATE, as_cleanup, dag_defaults
from mlops_platform.config import load_platform
from mlops_platform.params import MODEL_TYPES, dataset_param, model_name_param
from mlops_platform.pods import cleanup_command, mapped_profile_task, pod_task, trainer_command

cfg = load_platform()
SWEEP = [p for p in ("gpu-1", "gpu-2", "gpu-4", "gpu-8") if p in cfg.profiles]
EXPERIMENT = "gpu-sweep"
# Each variant trains with its own model seed (estimator random_state), so variants differ.
SEEDS = {profile: 1000 + 7 * i for i, profile in enumerate(SWEEP)}
SEEDED_MODEL_TYPES = [m for m in MODEL_TYPES if m != "knn"]

with DAG(
    dag_id="gpu_sweep",
    schedule=cfg.schedule("gpu_sweep"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    tags=["mlops", "training", "gpu"],
    params={
        "dataset": dataset_param(),
        # Seeded estimators only (knn has no random_state to vary).
        "model_type": Param("random_forest", type="string", enum=SEEDED_MODEL_TYPES),
        "metric": Param("test_accuracy", type="string", enum=["test_accuracy", "test_f1_macro"]),
        "model_name": model_name_param("iris"),
    },
    doc_md=__doc__
    + f"""

Dynamic task mapping over the profiles {", ".join(SWEEP) or "(none defined by the chart)"}: map
index *i* of `prepare`, `train` and `evaluate` works on profile *i* in its own workspace
directory `<dag_id>/<run_id>/<profile>`; each variant trains with its own seed
(`--param random_state=<seed>`: {", ".join(f"{p}={n}" for p, n in SEEDS.items())}). `compare` reads the
runs from MLflow (tag `airflow.run_id`), picks the best by `metric` and tags it
`mlops.sweep_best=true`; `register` registers the winner as a version of `model_name` (alias
`candidate`) that takes `champion` only if it beats the current champion on `metric`.

Pool slots: Airflow 3.1 cannot map `pool_slots` (the scheduler takes it from the task, not from
the map index), so every `train` index reserves the largest GPU count of the sweep in the
`{cfg.gpu_pool}` pool: the sweep never over-commits the GPUs Airflow may use, at the price of
running the indices one after another when the pool is smaller than twice that.
""",
    **dag_defaults(),
) as dag:
    prepare = mapped_profile_task(
        "prepare",
        trainer_command(cfg, "prepare", "--dataset", "{{ params.dataset }}"),
        profiles=SWEEP,
        run_profile=cfg.default_profile,
        cfg=cfg,
    )
    train = mapped_profile_task(
        "train",
        trainer_command(
            cfg,
            "train",
            "--model-type",
            "{{ params.model_type }}",
            "--experiment",
            EXPERIMENT,
            "--run-name",
            "{{ run_id | mlops_path_segment }}-__PROFILE__",
            *RUN_TAG_ARGS,
            "--tag",
            "mlops.sweep_profile=__PROFILE__",
        ),
        profiles=SWEEP,
        cfg=cfg,
        profile_args={
            p: ["--param", f"random_state={seed}", "--tag", f"mlops.sweep_seed={seed}"]
            for p, seed in SEEDS.items()
        },
    )
    evaluate = mapped_profile_task(
        "evaluate",
        trainer_command(cfg, "evaluate"),
        profiles=SWEEP,
        run_profile=cfg.default_profile,
        cfg=cfg,
    )

    @task(task_id="compare")
    def compare(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, Any]:
        """Pick the best run of this sweep by the chosen metric and tag it in MLflow."""
        from mlops_platform import mlflow_rest

        uri = cfg.tracking_uri
        metric = (params or {}).get("metric", "test_accuracy")
        runs = mlflow_rest.search_runs(uri, EXPERIMENT, f"tags.`airflow.run_id` = '{run_id}'")
        scored = []
        for run in runs:
            metrics = mlflow_rest.run_metrics(run)
            tags = mlflow_rest.run_tags(run)
            if metric in metrics:
                scored.append((metrics[metric], tags.get("mlops.sweep_profile", "?"), run["info"]["run_id"]))
        if not scored:
            raise RuntimeError(f"no evaluated run of {run_id} in experiment {EXPERIMENT!r} has {metric}")
        best = max(scored)
        mlflow_rest.set_run_tag(uri, best[2], "mlops.sweep_best", "true")
        result = {"metric": metric, "best_profile": best[1], "best_run_id": best[2], "best_value": best[0]}
        result["all"] = [{"profile": p, "run_id": r, "value": v} for v, p, r in sorted(scored, reverse=True)]
        print(result)
        return result

    # The winner's workspace (train.json, evaluate.json) -> a registered version; champion only if better.
    register = pod_task(
        "register",
        trainer_command(
            cfg, "register", "--model-name", "{{ params.model_name }}", "--metric", "{{ params.metric }}"
        ),
        profile=cfg.default_profile,
        cfg=cfg,
        env={
            cfg.workspace_subpath_env: WORKSPACE_SUBPATH_TEMPLATE
            + "/{{ ti.xcom_pull(task_ids='compare')['best_profile'] }}"
        },
    )
    cleanup = mapped_profile_task(
        "cleanup",
        cleanup_command(cfg),
        profiles=SWEEP,
        run_profile=cfg.default_profile,
        cfg=cfg,
        trigger_rule="all_done",
        retries=1,
    )
    chain(prepare, train, evaluate, compare(), register, cleanup)
    as_cleanup(cleanup)
