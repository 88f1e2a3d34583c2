"""run_job: one container job from validated params (image, tag, command, profile, env, timeout)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import airflow.providers.cncf.kubernetes.operators.pod  # noqa: F401  (pre-imported by the DAG processor before it forks)
from airflow.sdk import DAG, chain, task
from mlops_platform.basecommand.operator import basecommand_job
from mlops_platform.basecommand.settings import BASECOMMAND, KUBERNETES, basecommand_settings, check_choice
from mlops_platform.config import load_platform
from mlops_platform.params import (
    backend_param,
    command_param,
    env_param,
    image_name_param,
    image_tag_param,
    int_param,
    ngc_image_param,
    profile_param,
    secret_env_param,
)
from mlops_platform.pods import profile_task_id, profile_tasks

cfg = load_platform()
bc = basecommand_settings(cfg)
MAX_TIMEOUT = 24 * 3600
# Base Command: the backend choice, and the NGC image its job runs (the platform registry is not
# reachable from NGC); offered only where the chart enables the backend.
BACKEND_PARAMS = {"backend": backend_param(bc)} | ({"ngc_image": ngc_image_param(bc)} if bc.enabled else {})

with DAG(
    **cfg.dag_args("run_job", "job", scheduled=False),
    params={
        "image": image_name_param("trainer"),
        "tag": image_tag_param("dev"),
        "command": command_param(["mlops-trainer", "--version"]),
        "profile": profile_param(cfg),
        "env": env_param(),
        "secrets": secret_env_param(cfg),
        "timeout_seconds": int_param(
            3600, 60, MAX_TIMEOUT, "Deadline of the job (pod activeDeadlineSeconds; Base Command run time limit)"
        ),
        **BACKEND_PARAMS,
    },
    # Lists and mappings from params (command, env) must stay lists and mappings when rendered.
    render_template_as_native_obj=True,
    doc_md=__doc__
    + f"""

Trigger with a JSON conf such as
`{{"image": "trainer", "tag": "1.0.0", "command": ["mlops-trainer", "--version"],
"profile": "gpu-1", "env": {{"LOG_LEVEL": "debug"}}, "timeout_seconds": 600}}`.

- `image` is a name inside the platform registry (`{cfg.image_prefix or "<bare names>"}`); the
  registry cannot be changed from the conf. `tag` cannot be `latest`.
- `command` is an argument list, executed as given (no shell is added); it runs in the job's own pod
  (dags/README.md, "What a DAG trigger can and cannot do").
- `env` names match `^[A-Z_][A-Z0-9_]*$`; the platform's own, GPU-visibility and loader variables
  are reserved.
- `secrets` maps variable names to `<secret>/<key>` of the chart's allow-list
  (`pipelines.secrets`: {", ".join(cfg.secret_refs) or "none in this environment"}); the pod
  reads the value from the Secret (`secretKeyRef`), the conf only names it.
- `profile` picks the pod template (GPUs, node placement); the job runs as `job_<profile>`
  behind the `choose_profile` branch so it takes exactly its GPUs from the GPU pool.
- The workspace of the run is mounted at `{cfg.workspace_mount_path}` (`<dag_id>/<run_id>`).
- `backend` ({", ".join(bc.backends)}; default `{bc.default_backend}`): `basecommand` runs the job
  as `job_basecommand` on NVIDIA Base Command, on the instance type the chart declares for
  `profile` ({", ".join(f"{p} -> {t}" for p, t in bc.instance_types.items()) if bc.enabled else "disabled here"}),
  image `ngc_image` (NGC registry), the same `command`, `env` and `timeout_seconds`; `secrets` are
  refused there (no Kubernetes Secrets on Base Command).
""",
    **cfg.dag_defaults(),
) as dag:

    @task.branch(task_id="choose_profile")
    def choose_profile(params: dict[str, Any] | None = None) -> str:
        """job_<profile> on Kubernetes, job_basecommand on Base Command (checked: backend offered,
        profile has an instance type, no Secrets there)."""
        p = params or {}
        backend = check_choice(p.get("backend", KUBERNETES), bc, [p["profile"]], secrets=p.get("secrets"))
        if backend == BASECOMMAND:
            return "job_basecommand"
        if p["profile"] not in cfg.profiles:  # params are validated already; keep the branch total anyway
            raise ValueError(f"profile {p['profile']!r} is not one of {cfg.profile_names}")
        return profile_task_id("job", p["profile"])

    choose = choose_profile()
    jobs = profile_tasks(
        "job",
        "{{ params.command }}",
        profiles=cfg.profile_names,
        cfg=cfg,
        image=(f"{cfg.image_prefix}/" if cfg.image_prefix else "") + "{{ params.image }}:{{ params.tag }}",
        extra_env="{{ params.env }}",
        secret_env="{{ params.secrets }}",
        timeout_seconds="{{ params.timeout_seconds }}",
        execution_timeout=timedelta(seconds=MAX_TIMEOUT + 3600),
    )
    chain(choose, list(jobs.values()))
    if bc.enabled:
        # Waits in the triggerer (deferrable); the GPU pool is not involved (NVIDIA's capacity).
        choose >> basecommand_job(
            "job_basecommand",
            bc,
            image="{{ params.ngc_image }}",
            command="{{ params.command }}",
            profile="{{ params.profile }}",
            env="{{ params.env }}",
            time_limit_seconds="{{ params.timeout_seconds }}",
        )
