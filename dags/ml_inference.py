"""ml_inference: load data and resolve the model in parallel -> batch predict -> write predictions."""

from __future__ import annotations

from typing import Any

import airflow.providers.cncf.kubernetes.operators.pod  # noqa: F401  (pre-imported by the DAG processor before it forks)
from airflow.sdk import DAG, chain, task
from mlops_platform.config import load_platform
from mlops_platform.params import dataset_param, model_name_param, string_param
from mlops_platform.pods import cleanup_task, pod_task, trainer_command

cfg = load_platform()

with DAG(
    **cfg.dag_args("ml_inference", "inference"),
    params={
        "model_name": model_name_param("iris"),
        "alias": string_param("champion", r"^[a-z][a-z0-9_-]{0,31}$", "MLflow alias", max_length=32),
        "dataset": dataset_param(),
    },
    doc_md=__doc__
    + f"""

- `load_data` (pod) writes the input split into the run's workspace
  (`{cfg.workspace_mount_path}` = `<dag_id>/<run_id>` on the workspace volume).
- `load_model` (in parallel) resolves `models:/<model_name>@<alias>` to one model version
  through the MLflow REST API, so the prediction uses exactly that version even if the alias
  moves meanwhile.
- `batch_predict` (pod) runs `mlops-trainer predict` with that version into `out/predictions.csv`.
- `write_predictions` records where the predictions are (XCom) and `cleanup` (`all_done`)
  removes the run's input copies (`data/`), keeping `out/` on the workspace volume.
""",
    **cfg.dag_defaults(),
) as dag:
    load_data = pod_task(
        "load_data",
        trainer_command(cfg, "prepare", "--dataset", "{{ params.dataset }}"),
        profile=cfg.default_profile,
        cfg=cfg,
    )

    @task(task_id="load_model")
    def load_model(params: dict[str, Any] | None = None) -> dict[str, str]:
        from mlops_platform import mlflow_rest

        p = params or {}
        version = mlflow_rest.model_version_by_alias(cfg.tracking_uri, p["model_name"], p["alias"])
        return {
            "model_uri": f"models:/{p['model_name']}/{version['version']}",
            "version": str(version["version"]),
        }

    model = load_model()
    batch_predict = pod_task(
        "batch_predict",
        trainer_command(
            cfg,
            "predict",
            "--model-uri",
            "{{ ti.xcom_pull(task_ids='load_model')['model_uri'] }}",
            "--output",
            f"{cfg.workspace_mount_path}/out/predictions.csv",
        ),
        profile=cfg.default_profile,
        cfg=cfg,
    )

    @task(task_id="write_predictions")
    def write_predictions(dag_run: Any = None, ti: Any = None) -> dict[str, str]:
        from mlops_platform.common import path_segment

        model_info = ti.xcom_pull(task_ids="load_model")
        location = f"{dag_run.dag_id}/{path_segment(dag_run.run_id)}/out/predictions.csv"
        record = {"workspace_path": location, **model_info}
        print(f"predictions of {model_info['model_uri']} written to the workspace volume at {location}")
        return record

    cleanup = cleanup_task(cfg, "data")
    chain([load_data, model], batch_predict, write_predictions(), cleanup)
