"""Build the pod a KubernetesPodOperator task would create, without a cluster or a database.

Recipe (checked with Airflow 3.1.8 and apache-airflow-providers-cncf-kubernetes 10.25.0):
DagBag load -> DagRun + TIRunContext (task SDK datamodels) -> RuntimeTaskInstance around a
deep copy of the task -> get_template_context() (validates params, raising
ParamValidationError) -> render_template_fields(ctx) (a mapped task unmaps into ctx["task"])
-> build_pod_request_obj(ctx, dry_run=True) (without dry_run it looks for a kubeconfig).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pendulum


def template_context(
    dag: Any,
    task: Any,
    conf: dict[str, Any] | None = None,
    map_index: int = -1,
    run_id: str = "manual__2026-01-01T00:00:00+00:00",
    try_number: int = 1,
    xcoms: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The template context of one task instance for a DAG run with `conf` (validates params).

    `xcoms` maps upstream task ids to the value their XCom would hold: `ti.xcom_pull` needs the
    task supervisor at run time, which does not exist here, so it is replaced by that mapping
    (a stand-in only for what cannot exist without a running Airflow; nothing else is mocked).
    """
    from airflow.sdk.api.datamodels._generated import DagRun, TIRunContext

    ti_class = _offline_ti_class()

    now = pendulum.datetime(2026, 1, 1, tz="UTC")
    dag_run = DagRun(
        dag_id=dag.dag_id,
        run_id=run_id,
        logical_date=now,
        data_interval_start=now,
        data_interval_end=now,
        run_after=now,
        start_date=now,
        run_type="manual",
        state="running",
        conf=conf or {},
        clear_number=0,
        consumed_asset_events=[],
    )
    server_ctx = TIRunContext(
        dag_run=dag_run,
        max_tries=getattr(task, "retries", 0) or 0,
        variables=[],
        connections=[],
        upstream_map_indexes={},
        xcom_keys_to_clear=[],
        should_retry=False,
    )
    ti = ti_class.model_construct(
        id=uuid.uuid4(),
        task_id=task.task_id,
        dag_id=dag.dag_id,
        run_id=run_id,
        try_number=try_number,
        map_index=map_index,
        task=copy.deepcopy(task),
        max_tries=server_ctx.max_tries,
        dag_version_id=uuid.uuid4(),
        _ti_context_from_server=server_ctx,
        start_date=now,
    )
    object.__setattr__(ti, "_offline_xcoms", dict(xcoms or {}))
    return ti.get_template_context()


_OFFLINE_TI: Any = None


def _offline_ti_class() -> Any:
    """RuntimeTaskInstance whose xcom_pull answers from a dict (see template_context)."""
    global _OFFLINE_TI
    if _OFFLINE_TI is None:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        class OfflineTaskInstance(RuntimeTaskInstance):
            def xcom_pull(
                self, task_ids: Any = None, *args: Any, key: str = "return_value", **kwargs: Any
            ) -> Any:
                known = getattr(self, "_offline_xcoms", {})
                if isinstance(task_ids, str):
                    if task_ids not in known:
                        raise KeyError(f"no XCom given for task {task_ids!r} (pass xcoms=...)")
                    return known[task_ids]
                return [known[t] for t in task_ids or []]

        _OFFLINE_TI = OfflineTaskInstance
    return _OFFLINE_TI


def build_pod(dag: Any, task: Any, conf: dict[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    """The pod (as a plain dict) the operator would submit for this task instance and conf.

    `context`: the other arguments of template_context (map_index, run_id, try_number, xcoms)."""
    from kubernetes.client import ApiClient

    ctx = template_context(dag, task, conf=conf, **context)
    ctx_task = ctx["task"]
    ctx_task.render_template_fields(ctx)
    operator = ctx["task"]  # a mapped operator has been unmapped into ctx["task"]
    pod = operator.build_pod_request_obj(ctx, dry_run=True)
    return ApiClient().sanitize_for_serialization(pod)
