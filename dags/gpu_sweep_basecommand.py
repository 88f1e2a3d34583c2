"""gpu_sweep_basecommand: the same job on 1, 2, 4 and 8 GPU Base Command instances in parallel, then the best.

The NVIDIA Base Command Platform counterpart of `gpu_sweep`: one BaseCommandJobOperator per
profile (dynamic task mapping), each on the instance type the chart declares for that profile
(`basecommand.instanceTypes`), all waiting in the triggerer; the `datasets` named in the conf are
looked up through the API (name -> id) before each job is created and mounted read-only; `compare`
reads the result every job printed as its last `MLOPS_RESULT {json}` log line and picks the best
by `metric`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task
from mlops_platform.basecommand.operator import BaseCommandJobOperator
from mlops_platform.basecommand.settings import load_basecommand
from mlops_platform.basecommand.spec import IMAGE_PATTERN, MAX_TIME_LIMIT, MIN_TIME_LIMIT
from mlops_platform.config import load_platform
from mlops_platform.params import command_param, datasets_param, int_param, name_param, string_param

cfg = load_platform()
bc = load_basecommand(cfg.directory)
SWEEP = [p for p in ("gpu-1", "gpu-2", "gpu-4", "gpu-8") if p in cfg.profiles and (p in bc.instance_types or not bc.enabled)]

with DAG(
    **cfg.dag_args("gpu_sweep_basecommand", "training", "gpu", "basecommand", scheduled=False),
    params={
        "image": name_param(
            bc.image or "nvidia/pytorch:25.01-py3",
            IMAGE_PATTERN,
            "org[/team]/repo:tag in the NGC registry (not `latest`)",
            title="NGC image",
        ),
        "command": command_param(["python", "train.py"]),
        "datasets": datasets_param(),
        "time_limit_seconds": int_param(
            min(max(bc.time_limit_seconds, MIN_TIME_LIMIT), MAX_TIME_LIMIT),
            MIN_TIME_LIMIT,
            MAX_TIME_LIMIT,
            "Run time limit of each job (runPolicy.totalRuntimeSeconds)",
        ),
        "metric": string_param("test_accuracy", r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", "Metric to compare", max_length=64),
    },
    # The command param must stay a list when rendered.
    render_template_as_native_obj=True,
    doc_md=__doc__
    + f"""

Profiles: {", ".join(f"{p} -> {bc.instance_types.get(p, '(none)')}" for p in SWEEP) or "(none)"}.
Base Command is {"enabled" if bc.enabled else "DISABLED in this deployment (basecommand.enabled: false)"};
connection `{bc.conn_id}`. Each job must print `MLOPS_RESULT {{"<metric>": <number>}}` in its log.
""",
    **cfg.dag_defaults(),
) as dag:
    jobs = BaseCommandJobOperator.partial(
        task_id="job",
        image="{{ params.image }}",
        command="{{ params.command }}",
        datasets="{{ params.datasets }}",
        instance_types=bc.instance_types,
        ace=bc.ace,
        time_limit_seconds="{{ params.time_limit_seconds }}",
        conn_id=bc.conn_id,
        org=bc.org,
        team=bc.team,
        poll_interval=bc.poll_seconds,
    ).expand(profile=SWEEP)

    @task(task_id="compare")
    def compare(results: list[dict[str, Any]], params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The best job by the metric its MLOPS_RESULT line reported."""
        metric = (params or {}).get("metric", "test_accuracy")
        scored = []
        for profile, res in zip(SWEEP, results, strict=True):
            value = (res.get("result") or {}).get(metric)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                scored.append({"profile": profile, "job_id": res["job_id"], "value": value})
        if not scored:
            raise ValueError(f"no job of the sweep reported {metric!r} in an MLOPS_RESULT line")
        scored.sort(key=lambda r: r["value"], reverse=True)
        best = scored[0]
        print(f"best: {best['profile']} (job {best['job_id']}) {metric}={best['value']}")
        return {"metric": metric, "best_profile": best["profile"], "best_job_id": best["job_id"], "all": scored}

    compare(jobs.output)
