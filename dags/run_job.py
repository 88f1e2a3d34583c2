"""run_job: one container job from validated params (image, tag, command, profile, env, timeout)."""

from __future__ import annotations

from datetime import timedelta

import airflow.providers.cncf.kubernetes.operators.pod  # noqa: F401  (pre-imported by the DAG processor before it forks)
import pendulum
from airflow.sdk import DAG, chain
from mlops_platform.common import dag_defaults
from mlops_platform.config import load_platform
from mlops_platform.params import (
    command_param,
    env_param,
    image_name_param,
    image_tag_param,
    int_param,
    profile_param,
    secret_env_param,
)
from mlops_platform.pods import branch_on_profile, profile_tasks

cfg = load_platform()
MAX_TIMEOUT = 24 * 3600

with DAG(
    dag_id="run_job",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    tags=["mlops", "job"],
    params={
        "image": image_name_param("trainer"),
        "tag": image_tag_param("dev"),
        "command": command_param(["mlops-trainer", "--version"]),
        "profile": profile_param(cfg),
        "env": env_param(),
        "secrets": secret_env_param(cfg),
        "timeout_seconds": int_param(
            3600, 60, MAX_TIMEOUT, "Deadline of the job's pod (activeDeadlineSeconds)"
        ),
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
- `command` is an argument list executed without a shell (`sh -c ...` is refused).
- `env` names match `^[A-Z_][A-Z0-9_]*$`; the platform's own variables are reserved.
- `secrets` maps variable names to `<secret>/<key>` of the chart's allow-list
  (`pipelines.secrets`: {", ".join(cfg.secret_refs) or "none in this environment"}); the pod
  reads the value from the Secret (`secretKeyRef`), the conf only names it.
- `profile` picks the pod template (GPUs, node placement); the job runs as `job_<profile>`
  behind the `choose_profile` branch so it takes exactly its GPUs from the GPU pool.
- The workspace of the run is mounted at `{cfg.workspace_mount_path}` (`<dag_id>/<run_id>`).
""",
    **dag_defaults(),
) as dag:
    choose = branch_on_profile("job", cfg.profile_names)
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
