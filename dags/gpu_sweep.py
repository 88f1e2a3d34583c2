"""gpu_sweep: a list of variants (profile + hyperparameters) trained in parallel, then the best one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import airflow.providers.cncf.kubernetes.operators.pod  # noqa: F401  (pre-imported by the DAG processor before it forks)
from airflow.sdk import DAG, Param, chain, task
from mlops_platform import sweep
from mlops_platform.basecommand.settings import (
    BASECOMMAND,
    KUBERNETES,
    basecommand_settings,
    check_choice,
    job_settings,
)
from mlops_platform.common import WORKSPACE_SUBPATH_TEMPLATE
from mlops_platform.config import load_platform
from mlops_platform.params import (
    backend_param,
    command_param,
    dataset_param,
    model_name_param,
    ngc_image_param,
)
from mlops_platform.pods import cleanup_task, mapped_pod_task, pod_task, profile_task_id, trainer_command

cfg = load_platform()
SWEEP = [p for p in ("gpu-1", "gpu-2", "gpu-4", "gpu-8") if p in cfg.profiles]
# Profiles a variant may name: the GPU profiles (all profiles where the chart defines none).
PROFILES = cfg.gpu_profile_names or cfg.profile_names
# Variant files reviewed with the DAGs (git-sync); each is validated when a run chooses it.
FILES_DIR = Path(__file__).resolve().parent / sweep.SWEEPS_DIR
FILES = sweep.variant_files(FILES_DIR)
EXPERIMENT = sweep.EXPERIMENT
bc = basecommand_settings(cfg)
# Base Command: the NGC image and command of each variant's job (offered where the chart enables it).
BACKEND_PARAMS = {"backend": backend_param(bc)} | (
    {"ngc_image": ngc_image_param(bc), "ngc_command": command_param(["python", "train.py"])} if bc.enabled else {}
)



def _skip_unless_kubernetes(context: Any) -> None:
    from airflow.exceptions import AirflowSkipException

    if context["params"].get("backend", KUBERNETES) != KUBERNETES:
        raise AirflowSkipException("the variants ran on Base Command: no workspace to clean")


with DAG(
    **cfg.dag_args("gpu_sweep", "training", "gpu"),
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
        **BACKEND_PARAMS,
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
- `prepare` and `evaluate` (cpu) are mapped over every variant (`variants_each`); `train_<profile>` is mapped over
  the variants of that profile only (`variants_<profile>`; none = skipped) and reserves exactly
  that profile's GPUs in the `{cfg.gpu_pool}` pool: variants of all profiles train in parallel
  as far as the pool allows.
- `compare` reads the runs from MLflow (tag `airflow.run_id`), picks the best by `metric` and
  tags it `mlops.sweep_best=true`; `register` registers the winner as a version of `model_name`
  (alias `candidate`) that takes `champion` only if it beats the current champion on `metric`.
- `backend` ({", ".join(bc.backends)}; default `{bc.default_backend}`): `choose_backend` follows the
  pods above (`kubernetes`) or `basecommand`: one Base Command job per variant (`job_basecommand`,
  on the instance type the chart declares for the variant's profile, image `ngc_image`, command
  `ngc_command`, the variant in its environment: MLOPS_SWEEP_VARIANT, MLOPS_SWEEP_SEED,
  MLOPS_MODEL_TYPE, MLOPS_SWEEP_PARAMS, MLOPS_DATASET), waiting in the triggerer; `compare_basecommand`
  picks the best by the `MLOPS_RESULT {{"<metric>": ...}}` line each job logs (no MLflow
  registration: the jobs cannot reach the cluster's MLflow). Profiles with instance types:
  {", ".join(bc.instance_types) if bc.enabled else "none (Base Command disabled here)"}.
""",
    **cfg.dag_defaults(),
) as dag:

    @task(task_id="plan")
    def plan(params: dict[str, Any] | None = None, run_id: str | None = None, ti: Any = None) -> list[dict[str, Any]]:
        """Validate and resolve the variants; push them (key `variants`), return how many."""
        p = params or {}
        # a backend the deployment does not offer, or a profile without an instance type: fail here
        check_choice(p.get("backend", KUBERNETES), bc, [])
        planned = sweep.plan(
            p,
            FILES_DIR,
            PROFILES,
            dag_id="gpu_sweep",
            run_id=str(run_id),
            subpath_env=cfg.workspace_subpath_env,
            workspace=cfg.workspace_mount_path,
        )
        for v in planned:
            print(f"variant {v['name']}: {v['profile']} {v['model_type']} seed={v['seed']} params={v['params']}")
        check_choice(p.get("backend", KUBERNETES), bc, [v["profile"] for v in planned])
        ti.xcom_push(key="variants", value=planned)
        return len(planned)

    planned = plan()

    @task.branch(task_id="choose_backend")
    def choose_backend(params: dict[str, Any] | None = None) -> list[str]:
        if (params or {}).get("backend", KUBERNETES) == BASECOMMAND:
            return ["variants_basecommand"]
        return ["variants_each", *(profile_task_id("variants", p) for p in PROFILES)]

    backend = choose_backend()
    planned >> backend

    @task(task_id="variants_each")
    def variants_each(ti: Any = None) -> list[dict[str, Any]]:
        """prepare's and evaluate's entries: every variant's workspace (on the kubernetes path only)."""
        return sweep.for_every_variant(ti.xcom_pull(task_ids="plan", key="variants"))

    each = variants_each()
    backend >> each
    prepare = mapped_pod_task(
        "prepare",
        trainer_command(cfg, "prepare", "--dataset", "{{ params.dataset }}"),
        profile=cfg.default_profile,
        entries=each,
        cfg=cfg,
    )

    @task
    def variants_of(profile: str, ti: Any = None) -> list[dict[str, Any]]:
        """train_<profile>'s entries: the variants of this profile only (maybe none)."""
        return sweep.for_profile(ti.xcom_pull(task_ids="plan", key="variants"), profile)

    trains = []
    for profile in PROFILES:
        selected = variants_of.override(task_id=profile_task_id("variants", profile))(profile)
        backend >> selected
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
        entries=each,
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
    # The run's whole workspace (every variant's directory) is removed whatever happened; nothing
    # to remove when the variants ran on Base Command.
    cleanup = cleanup_task(cfg, pre_execute=_skip_unless_kubernetes)
    chain(trains, evaluate, compare(), register, cleanup)

    if bc.enabled:
        from mlops_platform.basecommand.operator import BaseCommandJobOperator

        @task(task_id="variants_basecommand")
        def variants_basecommand(params: dict[str, Any] | None = None, ti: Any = None) -> list[dict[str, Any]]:
            """One Base Command job per variant (all profiles: no GPU pool on NVIDIA's capacity)."""
            p = params or {}
            return sweep.for_basecommand(ti.xcom_pull(task_ids="plan", key="variants"), p["ngc_command"], p["dataset"])

        bc_entries = variants_basecommand()
        jobs = BaseCommandJobOperator.partial(
            task_id="job_basecommand",
            image="{{ params.ngc_image }}",
            time_limit_seconds=bc.time_limit_seconds,
            **job_settings(bc),
        ).expand_kwargs(bc_entries)

        @task(task_id="compare_basecommand")
        def compare_basecommand(
            results: list[dict[str, Any]], params: dict[str, Any] | None = None, ti: Any = None
        ) -> dict[str, Any]:
            """The best job by the metric its MLOPS_RESULT line reported."""
            planned = ti.xcom_pull(task_ids="plan", key="variants")
            result = sweep.best_of_jobs(planned, list(results), (params or {}).get("metric", "test_accuracy"))
            print(result)
            return result

        backend >> bc_entries
        compare_basecommand(jobs.output)
