"""yaml_pipelines: one DAG per YAML file of dags/pipelines/ (dag-factory on the platform's helpers).

See dags/README.md, "YAML pipelines", and mlops_platform/yaml_pipelines.py. A bad file is an
import error of this file naming the YAML file, task and key; the other pipelines still load.
"""

from __future__ import annotations

from pathlib import Path

# Pre-imported by the DAG processor before it forks (airflow.* modules only): the pod operator
# and what dag-factory's DagBuilder imports.
import airflow.providers.cncf.kubernetes.operators.pod  # noqa: F401
import airflow.providers.common.sql.sensors.sql  # noqa: F401
import airflow.providers.standard.operators.python  # noqa: F401
import airflow.providers.standard.sensors.python  # noqa: F401
from mlops_platform.yaml_pipelines import load_pipelines

load_pipelines(globals(), Path(__file__).parent)
