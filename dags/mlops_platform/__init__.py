"""Helpers shared by the platform's DAG files (excluded from DAG parsing by .airflowignore).

Import each name from the module that owns it; this package re-exports nothing:

- `common`: `as_cleanup()`, the run workspace (`path_segment`, `WORKSPACE_SUBPATH_TEMPLATE`,
  `PATH_FILTER`), `RUN_TAG_ARGS` and `schema_problems()`; imports nothing of this package.
- `config`: `load_platform()` / `parse_platform()`: the chart's platform.json (profiles,
  registry, namespaces, pool, MLflow) as a `PlatformConfig`, whose `dag_args()` and
  `dag_defaults()` every DAG passes to DAG(...).
- `names`: the name rules (`NameRule`: images, env names, mount paths, ...), one validator each.
- `params`: the `*_param()` helpers: every `dag_run.conf` key is a declared Param with a strict
  schema (the Base Command backend's too); `DATASETS`, `MODEL_TYPES`.
- `templates`: which Jinja templates an operator field may hold (declared params only).
- `pods`: `pod_task()` / `profile_tasks()` / `mapped_profile_task()`: KubernetesPodOperator
  tasks wired to the chart's pod templates. It imports the provider (kubernetes client, ~1 s):
  a DAG without pod tasks (ml_serving) does not import it.
- `serving`, `mlflow_rest`: the model-server objects and the MLflow REST calls of the DAGs'
  Python tasks (imported inside those tasks).
- `sweep`: gpu_sweep's variants (schema, files of dags/sweeps/, the plan of a run).
- `yaml_pipelines`: the YAML pipelines of dags/pipelines/ built with dag-factory.
- `basecommand/` (`spec`, `client`, `settings`, `operator`): the NVIDIA Base Command backend.
- `alerts`: the failure notifiers (`failure_notifiers()`, `WebhookNotifier`) `cfg.dag_defaults()`
  adds from platform.json `alerts`.

Everything here runs at parse time: it reads one file and builds operators, nothing else.
"""
