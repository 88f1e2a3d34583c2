"""Helpers shared by the platform's DAG files (excluded from DAG parsing by .airflowignore).

- `load_platform()`: the chart's platform.json (profiles, registry, namespaces, pool, MLflow).
- `pod_task()` / `profile_tasks()` / `profile_expand_kwargs()`: KubernetesPodOperator tasks
  wired to the chart's pod templates.
- Param helpers: every `dag_run.conf` key is a declared Param with a strict schema.

Everything here runs at parse time: it reads one file and builds operators, nothing else.
"""

from __future__ import annotations

from .common import (
    PATH_FILTER,
    RUN_TAG_ARGS,
    WORKSPACE_SUBPATH_TEMPLATE,
    as_cleanup,
    dag_defaults,
    path_segment,
)
from .config import (
    PlatformConfig,
    PlatformConfigError,
    Profile,
    load_platform,
    parse_platform,
)
from .params import (
    DATASETS,
    MODEL_TYPES,
    command_param,
    dataset_param,
    env_param,
    image_name_param,
    image_tag_param,
    int_param,
    model_name_param,
    model_type_param,
    profile_param,
    profiles_param,
    relative_path_param,
    string_param,
)

# The pod helpers import the KubernetesPodOperator (kubernetes client: ~1 s); they are loaded on
# first use so a DAG without pod tasks (ml_serving) does not pay for it at parse time.
_LAZY_PODS = {
    "GPU_RESOURCE",
    "MlopsPodOperator",
    "branch_on_profile",
    "cleanup_command",
    "mapped_profile_task",
    "pod_task",
    "pod_task_kwargs",
    "profile_task_id",
    "profile_tasks",
    "resources_for",
    "trainer_command",
}


def __getattr__(name: str) -> object:
    if name in _LAZY_PODS:
        from . import pods

        return getattr(pods, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "as_cleanup",
    "GPU_RESOURCE",
    "PATH_FILTER",
    "RUN_TAG_ARGS",
    "WORKSPACE_SUBPATH_TEMPLATE",
    "MlopsPodOperator",
    "PlatformConfig",
    "PlatformConfigError",
    "Profile",
    "branch_on_profile",
    "command_param",
    "DATASETS",
    "dataset_param",
    "MODEL_TYPES",
    "model_type_param",
    "dag_defaults",
    "env_param",
    "image_name_param",
    "image_tag_param",
    "int_param",
    "load_platform",
    "model_name_param",
    "parse_platform",
    "path_segment",
    "pod_task",
    "pod_task_kwargs",
    "profile_param",
    "profile_task_id",
    "profile_tasks",
    "profiles_param",
    "relative_path_param",
    "resources_for",
    "string_param",
    "cleanup_command",
    "trainer_command",
    "mapped_profile_task",
]
