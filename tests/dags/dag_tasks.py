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
# Values the upstream tasks would have pushed (see tests/support/airflow_pods.py).
SAMPLE_XCOMS: dict[str, Any] = {
    "load_model": {"model_uri": "models:/iris/3", "version": "3"},
    "compare": {"best_profile": "gpu-2", "best_run_id": "0123abcd", "metric": "test_accuracy", "best_value": 0.97},
}


def is_pod_task(task: Any) -> bool:
    if isinstance(task, KubernetesPodOperator):
        return True
    op_class = getattr(task, "operator_class", None)
    return isinstance(op_class, type) and issubclass(op_class, KubernetesPodOperator)


def map_indexes(task: Any) -> list[int]:
    """-1 for a plain task; 0..n-1 for a task mapped over a literal list."""
    expand_input = getattr(task, "expand_input", None)
    if expand_input is None:
        return [-1]
    value = expand_input.value
    if isinstance(value, list):  # expand_kwargs([...])
        return list(range(len(value)))
    lengths = {len(v) for v in value.values() if isinstance(v, list | tuple)}
    assert len(lengths) == 1, f"{task.task_id}: cannot tell the map length from {value!r}"
    return list(range(lengths.pop()))


def mapped_entry(task: Any, map_index: int) -> dict[str, Any]:
    if map_index < 0:
        return {}
    value = task.expand_input.value
    return value[map_index] if isinstance(value, list) else {k: v[map_index] for k, v in value.items()}


def pod_tasks(dagbag: Any) -> Iterator[tuple[Any, Any, int]]:
    for dag_id in sorted(dagbag.dags):
        dag = dagbag.dags[dag_id]
        for task in dag.tasks:
            if is_pod_task(task):
                for index in map_indexes(task):
                    yield dag, task, index


def task_value(task: Any, field: str, map_index: int) -> Any:
    """A field of a task (the mapped entry's value for a map index, else the partial's)."""
    entry = mapped_entry(task, map_index)
    if field in entry:
        return entry[field]
    if hasattr(task, "partial_kwargs"):
        return task.partial_kwargs.get(field)
    return getattr(task, field)
