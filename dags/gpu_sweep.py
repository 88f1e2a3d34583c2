"""gpu_sweep: a list of variants (profile + hyperparameters) trained in parallel, then the best one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import airflow.providers.cncf.kubernetes.operators.pod  # noqa: F401  (pre-imported by the DAG processor before it forks)
import pendulum
from airflow.sdk import DAG, Param, chain, task
from mlops_platform import sweep
from mlops_platform.common import WORKSPACE_SUBPATH_TEMPLATE, as_cleanup, dag_defaults
from mlops_platform.config import load_platform
from mlops_platform.params import dataset_param, model_name_param
from mlops_platform.pods import cleanup_command, mapped_pod_task, pod_task, profile_task_id, trainer_command

cfg = load_platform()
SWEEP = [p for p in ("gpu-1", "gpu-2", "gpu-4", "gpu-8") if p in cfg.profiles]
# Profiles a variant may name: the GPU profiles (all profiles where the chart defines none).
PROFILES = cfg.gpu_profile_names or cfg.profile_names
# Variant files reviewed with the DAGs (git-sync); each is validated when a run chooses it.
FILES_DIR = Path(__file__).resolve().parent / sweep.SWEEPS_DIR
FILES = sweep.variant_files(FILES_DIR)
EXPERIMENT = sweep.EXPERIMENT

with DAG(
    dag_id="gpu_sweep",
    schedule=cfg.schedule("gpu_sweep"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    tags=["mlops", "training", "gpu"],
    params={
        "dataset": dataset_param(),
        "variants": sweep.variants_param(PROFILES, sweep.default_variants(SWEEP or PROFILES[:1])),
        "variants_file": Param(
            "",
            type="string",
            enum=["", *FILES],
            title="Variants file",
            description="A file of dags/sweeps/ whose `variants` replace the `variants` list ('' = use the list)",
        ),
        # Default model type of a variant that names none (seeded estimators only).
        "model_type": Param("random_forest", type="string", enum=list(sweep.SEEDED_MODEL_TYPES)),
        "metric": Param("test_accuracy", type="string", enum=["test_accuracy", "test_f1_macro"]),
        "model_name": model_name_param("iris"),
    },
    doc_md=__doc__
    + f"""

Trigger with `variants`, a list of `{{"profile": "gpu-2", "name": "rf-deep", "model_type":
"random_forest", "seed": 7, "params": {{"max_depth": 8}}}}` (only `profile` required; profiles:
{", ".join(PROFILES)}; at most {sweep.MAX_VARIANTS}), or `variants_file`, a YAML file of
`dags/sweeps/` ({", ".join(FILES) or "none in this deployment"}) holding `variants: [...]`
(checked against the same schema when a run reads it).

- `plan` resolves the variants (name, model type, seed = the estimator's `random_state`) into
  the literal arguments and workspace directory `<dag_id>/<run_id>/<variant>` of each pod.
- `prepare` and `evaluate` (cpu) are mapped over every variant; `train_<profile>` is mapped over
  the variants of that profile only (`variants_<profile>`; none = skipped) and reserves exactly
  that profile's GPUs in the `{cfg.gpu_pool}` pool: variants of all profiles train in parallel
  as far as the pool allows.
- `compare` reads the runs from MLflow (tag `airflow.run_id`), picks the best by `metric` and
  tags it `mlops.sweep_best=true`; `register` registers the winner as a version of `model_name`
  (alias `candidate`) that takes `champion` only if it beats the current champion on `metric`.
""",
    **dag_defaults(),
) as dag:

    @task(task_id="plan")
    def plan(params: dict[str, Any] | None = None, run_id: str | None = None, ti: Any = None) -> list[dict[str, Any]]:
        """Validate and resolve the variants; push them (key `variants`), return prepare's entries."""
        planned = sweep.plan(
            params or {},
            FILES_DIR,
            PROFILES,
            dag_id="gpu_sweep",
            run_id=str(run_id),
            subpath_env=cfg.workspace_subpath_env,
            workspace=cfg.workspace_mount_path,
        )
        for v in planned:
            print(f"variant {v['name']}: {v['profile']} {v['model_type']} seed={v['seed']} params={v['params']}")
        ti.xcom_push(key="variants", value=planned)
        return sweep.for_every_variant(planned)

    planned = plan()
    prepare = mapped_pod_task(
        "prepare",
        trainer_command(cfg, "prepare", "--dataset", "{{ params.dataset }}"),
        profile=cfg.default_profile,
        entries=planned,
        cfg=cfg,
    )

    @task
    def variants_of(profile: str, ti: Any = None) -> list[dict[str, Any]]:
        """train_<profile>'s entries: the variants of this profile only (maybe none)."""
        return sweep.for_profile(ti.xcom_pull(task_ids="plan", key="variants"), profile)

    trains = []
    for profile in PROFILES:
        selected = variants_of.override(task_id=profile_task_id("variants", profile))(profile)
        planned >> selected
        train = mapped_pod_task(
            profile_task_id("train", profile),
            ["mlops-trainer"],
            profile=profile,
            entries=selected,
            mapped=("arguments", "env_vars"),
            cfg=cfg,
        )
        prepare >> train
        trains.append(train)
    evaluate = mapped_pod_task(
        "evaluate",
        trainer_command(cfg, "evaluate"),
        profile=cfg.default_profile,
        entries=planned,
        cfg=cfg,
        # the trains of profiles without variants are skipped
        trigger_rule="none_failed_min_one_success",
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
                profile = tags.get("mlops.sweep_profile", "?")
                variant = tags.get("mlops.sweep_variant", profile)
                scored.append((metrics[metric], variant, profile, run["info"]["run_id"]))
        if not scored:
            raise RuntimeError(f"no evaluated run of {run_id} in experiment {EXPERIMENT!r} has {metric}")
        best = max(scored)
        mlflow_rest.set_run_tag(uri, best[3], "mlops.sweep_best", "true")
        result = {
            "metric": metric,
            "best_variant": best[1],
            "best_profile": best[2],
            "best_run_id": best[3],
            "best_value": best[0],
        }
        result["all"] = [
            {"variant": n, "profile": p, "run_id": r, "value": v} for v, n, p, r in sorted(scored, reverse=True)
        ]
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
            + "/{{ ti.xcom_pull(task_ids='compare')['best_variant'] }}"
        },
    )
    # The run's whole workspace (every variant's directory) is removed whatever happened.
    cleanup = pod_task(
        "cleanup",
        cleanup_command(cfg),
        profile=cfg.default_profile,
        cfg=cfg,
        trigger_rule="all_done",
        retries=1,
    )
    chain(planned, prepare)
    chain(trains, evaluate, compare(), register, cleanup)
    as_cleanup(cleanup)
