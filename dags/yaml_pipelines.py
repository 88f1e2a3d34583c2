"""yaml_pipelines: one DAG per YAML file of dags/pipelines/ (dag-factory on the platform's helpers).

See dags/README.md, "YAML pipelines", and mlops_platform/yaml_pipelines.py. A bad file is an
import error of this file naming the YAML file, task and key; the other pipelines still load.
"""

from __future__ import annotations

from pathlib import Path

import airflow.providers.cncf.kubernetes.operators.pod  # noqa: F401  (pre-imported by the DAG processor before it forks)
from mlops_platform.yaml_pipelines import load_pipelines

load_pipelines(globals(), Path(__file__).parent)
