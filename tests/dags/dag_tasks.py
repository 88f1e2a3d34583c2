"""Enumerate the pod tasks of the parsed DAGs (each map index too) with a sample conf each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

# Sample confs per DAG: the defaults plus a GPU variant where the DAG takes a profile.
SAMPLE_CONFS: dict[str, list[dict[str, Any]]] = {
    "ml_training": [{}, {"profile": "gpu-4", "model_type": "random_forest"}],
    "run_job": [
        {},
        {
            "image": "trainer",
            "tag": "1.2.3",
            "command": ["mlops-trainer", "prepare", "--workspace", "/workspace"],
            "profile": "gpu-2",
            "env": {"LOG_LEVEL": "debug", "MY_SETTING": "a b; $(not a shell)"},
            "timeout_seconds": 600,
        },
    ],
}
SAMPLE_RUN_ID = "manual__2026-03-04T05:06:07.890123+00:00"
# Values the upstream tasks would have pushed (see tests/support/airflow_pods.py).
SAMPLE_XCOMS: dict[str, Any] = {
    "load_model": {"model_uri": "models:/iris/3", "version": "3"},
    "compare": {
        "best_variant": "gpu-2",
        "best_profile": "gpu-2",
        "best_run_id": "0123abcd",
        "metric": "test_accuracy",
        "best_value": 0.97,
    },
}


def is_pod_task(task: Any) -> bool:
    if isinstance(task, KubernetesPodOperator):
        return True
    op_class = getattr(task, "operator_class", None)
    return isinstance(op_class, type) and issubclass(op_class, KubernetesPodOperator)


def map_indexes(task: Any, xcoms: dict[str, Any] | None = None) -> list[int]:
    """-1 for a plain task; 0..n-1 for a task mapped over a literal list, or over the XCom of an
    upstream task as given in `xcoms` (see python_xcoms)."""
    expand_input = getattr(task, "expand_input", None)
    if expand_input is None:
        return [-1]
    value = expand_input.value
    if isinstance(value, list):  # expand_kwargs([...])
        return list(range(len(value)))
    source = getattr(value, "operator", None)
    if source is not None:  # expand_kwargs(<XComArg>): the default conf's entries unless given
        xcoms = xcoms if xcoms is not None else python_xcoms(task.dag, {}, SAMPLE_RUN_ID)
        return list(range(len(xcoms[source.task_id])))
    lengths = {len(v) for v in value.values() if isinstance(v, list | tuple)}
    assert len(lengths) == 1, f"{task.task_id}: cannot tell the map length from {value!r}"
    return list(range(lengths.pop()))


def mapped_entry(task: Any, map_index: int, xcoms: dict[str, Any] | None = None) -> dict[str, Any]:
    if map_index < 0:
        return {}
    value = task.expand_input.value
    source = getattr(value, "operator", None)
    if source is not None:
        xcoms = xcoms if xcoms is not None else python_xcoms(task.dag, {}, SAMPLE_RUN_ID)
        return xcoms[source.task_id][map_index]
    return value[map_index] if isinstance(value, list) else {k: v[map_index] for k, v in value.items()}


def python_xcoms(dag: Any, conf: dict[str, Any], run_id: str) -> dict[str, Any]:
    """What the DAG's Python tasks that feed a mapped pod task (`expand_kwargs(<XComArg>)`) return
    for this conf, computed by calling their own callables (upstream Python tasks first): the
    map length and entries of those pod tasks. Task id -> return value."""
    params = {k: dag.params[k] for k in dag.params}
    params.update(conf)
    store: dict[tuple[str, str], Any] = {}

    class TI:  # what these callables use of the task instance: xcom_push / xcom_pull
        def xcom_push(self, key: str, value: Any) -> None:
            store[(self.task_id, key)] = value

        def xcom_pull(self, task_ids: str, key: str = "return_value", **_: Any) -> Any:
            return store[(task_ids, key)]

    def run(task: Any) -> None:
        if (task.task_id, "return_value") in store:
            return
        for up in task.upstream_list:
            run(up)
        ti = TI()
        ti.task_id = task.task_id
        context = {"params": params, "run_id": run_id, "ti": ti}
        import inspect

        wanted = inspect.signature(task.python_callable).parameters
        kwargs = {k: v for k, v in context.items() if k in wanted}
        store[(task.task_id, "return_value")] = task.python_callable(*task.op_args, **task.op_kwargs, **kwargs)

    for task in dag.tasks:
        source = getattr(getattr(getattr(task, "expand_input", None), "value", None), "operator", None)
        if source is not None and is_pod_task(task):
            run(source)
    return {task_id: value for (task_id, key), value in store.items() if key == "return_value"}


def pod_tasks(dagbag: Any) -> Iterator[tuple[Any, Any, int]]:
    """(dag, pod task, map index) of every pod task; map indexes of the default conf."""
    for dag_id in sorted(dagbag.dags):
        dag = dagbag.dags[dag_id]
        for task in dag.tasks:
            if is_pod_task(task):
                for index in map_indexes(task):
                    yield dag, task, index


def task_value(task: Any, field: str, map_index: int, xcoms: dict[str, Any] | None = None) -> Any:
    """A field of a task (the mapped entry's value for a map index, else the partial's)."""
    entry = mapped_entry(task, map_index, xcoms)
    if field in entry:
        return entry[field]
    if hasattr(task, "partial_kwargs"):
        return task.partial_kwargs.get(field)
    return getattr(task, field)


def xcoms_for(dag: Any, conf: dict[str, Any], run_id: str = SAMPLE_RUN_ID) -> dict[str, Any]:
    """SAMPLE_XCOMS plus what the DAG's own Python tasks return for this conf (python_xcoms)."""
    return {**SAMPLE_XCOMS, **python_xcoms(dag, conf, run_id)}


# The run id of the sample runs (pods built without a cluster).
RUN_ID = "manual__2026-03-04T05:06:07.890123+00:00"


def built_pods(env: Any, bag: Any, run_id: str = RUN_ID) -> list[tuple[str, Any, Any, int, dict, dict]]:
    """Every pod task's pods of the DAGs in `bag`, built for each sample conf in `env`:
    (label, dag, task, map index, conf, pod)."""
    from mlops_platform.common import path_segment  # noqa: F401  (imported from the DAG folder)

    from tests.support.airflow_pods import build_pod

    out = []
    with env.active():
        for dag, task, index in pod_tasks(bag):
            for conf in SAMPLE_CONFS.get(dag.dag_id, [{}]):
                pod = build_pod(
                    dag, task, conf=conf, map_index=index, run_id=run_id, xcoms=xcoms_for(dag, conf, run_id)
                )
                label = f"{env.name}:{dag.dag_id}.{task.task_id}[{index}] conf={conf}"
                out.append((label, dag, task, index, conf, pod))
    return out
