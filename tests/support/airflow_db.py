"""A migrated Airflow metadata DB and a DAG folder holding chosen DAG files, for dag.test() tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support import paths


def dag_folder(*dag_ids: str) -> Path:
    """Migrate the metadata DB (sqlite in this worker's AIRFLOW_HOME, tests/conftest.py) and copy
    `dags/<dag_id>.py` of each DAG id into Airflow's dags_folder; returns that folder."""
    from airflow.configuration import conf
    from airflow.utils.db import initdb

    initdb()
    folder = Path(conf.get("core", "dags_folder"))
    folder.mkdir(parents=True, exist_ok=True)
    for dag_id in dag_ids:
        shutil.copy(paths.DAGS_DIR / f"{dag_id}.py", folder / f"{dag_id}.py")
    return folder
