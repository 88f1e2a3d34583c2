"""ml_serving: roll out a registered model version behind a Service and an Ingress, safely."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, chain, task
from mlops_platform.config import load_platform
from mlops_platform.names import CONTROL_CHARACTERS
from mlops_platform.params import int_param, model_name_param, string_param

cfg = load_platform()

IRIS_SAMPLE = {
    "dataframe_split": {
        "columns": ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"],
        "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]],
    }
}

with DAG(
    **cfg.dag_args("ml_serving", "serving", scheduled=False),
    params={
        "model_name": model_name_param("iris"),
        "version": Param(
            None,
            type=["null", "string"],
            pattern=r"^[1-9][0-9]{0,8}$",
            maxLength=9,
            **{"not": {"type": "string", "pattern": CONTROL_CHARACTERS}},
            description="Model version to serve; empty = the version behind `alias`",
        ),
        "alias": string_param("champion", r"^[a-z][a-z0-9_-]{0,31}$", "MLflow alias", max_length=32),
        "replicas": int_param(1, 1, 10, "Server replicas"),
        "ready_timeout_seconds": int_param(600, 30, 3600, "How long to wait for the rollout"),
        "smoke_input": Param(
            IRIS_SAMPLE,
            type="object",
            properties={
                "dataframe_split": {
                    "type": "object",
                    "properties": {
                        "columns": {
                            "type": "array",
                            "items": {"type": "string", "maxLength": 128},
                            "maxItems": 256,
                        },
                        "data": {
                            "type": "array",
                            "maxItems": 100,
                            # rows of scalar cells (an object or a list in a cell is refused)
                            "items": {
                                "type": "array",
                                "maxItems": 256,
                                "items": {"type": ["number", "string", "boolean", "null"], "maxLength": 256},
                            },
                        },
                    },
                    "required": ["columns", "data"],
                    "additionalProperties": False,
                }
            },
            required=["dataframe_split"],
            additionalProperties=False,
            description="Request body of the smoke test (MLflow `dataframe_split`)",
        ),
    },
    doc_md=__doc__
    + f"""

The MLflow model server (`mlflow models serve`, image `{cfg.serving.get("image") or cfg.mlflow_image}`)
runs as Deployment + Service `<model>-serving` in namespace `{cfg.serving.get("namespace") or cfg.namespace}`,
with an Ingress at `<model>.<serving.domain>` when the chart sets a domain. The tasks talk to the
Kubernetes API with the service account Airflow runs under (the chart's serving RBAC).

1. `resolve_version`: the version given, or the one behind `alias` (MLflow REST).
2. `deploy`: snapshot the current objects, then create or patch them (idempotent: re-running
   the same version changes nothing).
3. `wait_ready`: the new ReplicaSet is fully available.
4. `smoke_test`: POST `smoke_input` to `/invocations` through the Service.
5. `rollback` (only when 3 or 4 failed): restore the snapshot (or delete what was created) and
   fail the run. Serving disabled in the chart -> `deploy` fails with that message.
""",
    **cfg.dag_defaults(),
) as dag:

    @task(task_id="resolve_version")
    def resolve_version(params: dict[str, Any] | None = None) -> dict[str, str]:
        from mlops_platform import mlflow_rest

        p = params or {}
        if p.get("version"):
            return {"model": p["model_name"], "version": str(p["version"])}
        version = mlflow_rest.model_version_by_alias(cfg.tracking_uri, p["model_name"], p["alias"])
        return {"model": p["model_name"], "version": str(version["version"])}

    @task(task_id="deploy")
    def deploy(target: dict[str, str], params: dict[str, Any] | None = None) -> dict[str, Any]:
        from mlops_platform import serving

        if not cfg.serving.get("enabled"):
            raise RuntimeError("model serving is disabled in the chart (set serving.enabled=true)")
        objects = serving.serving_objects(
            cfg, target["model"], target["version"], replicas=(params or {})["replicas"]
        )
        snap = serving.snapshot(objects)
        try:
            actions = serving.apply(objects)
        except Exception:
            print("apply failed, restoring the previous objects:", serving.restore(snap))
            raise
        print("\n".join(actions))
        return {"snapshot": snap, "actions": actions, **target}

    @task(task_id="wait_ready")
    def wait_ready(rollout: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        from mlops_platform import serving

        name = serving.serving_name(rollout["model"])
        return serving.wait_ready(
            serving.serving_namespace(cfg), name, (params or {})["ready_timeout_seconds"]
        )

    @task(task_id="smoke_test")
    def smoke_test(rollout: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        from mlops_platform import serving

        return serving.smoke_test(serving.service_url(cfg, rollout["model"]), (params or {})["smoke_input"])

    @task(task_id="rollback", trigger_rule="one_failed", retries=3)
    def rollback(ti: Any = None) -> None:
        from airflow.exceptions import AirflowFailException
        from mlops_platform import serving

        rollout = ti.xcom_pull(task_ids="deploy")
        if not rollout:
            raise AirflowFailException("deploy did not complete: nothing to roll back")
        print("\n".join(serving.restore(rollout["snapshot"])))
        raise AirflowFailException(
            f"{rollout['model']} version {rollout['version']} failed its rollout; previous state restored"
        )

    target = resolve_version()
    rollout = deploy(target)
    ready = wait_ready(rollout)
    smoke = smoke_test(rollout)
    chain(ready, smoke)
    [ready, smoke] >> rollback()
