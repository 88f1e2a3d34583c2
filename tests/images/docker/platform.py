"""The chart rendered with values/kind.yaml as the DAGs and the Airflow image see it: the files
of its platform ConfigMap (platform.json + schema) and pod-template ConfigMap written to a
directory, MLOPS_PLATFORM_DIR / MLOPS_POD_TEMPLATES_DIR pointed at them while DAGs are parsed
in this process (in the Airflow container they are mounted at the chart's paths instead)."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import paths
from tests.support.helm import render_chart
from tests.support.overlays import with_overlays
from tests.support.platform_env import platform_dirs

RELEASE = NAMESPACE = "mlops"


@dataclass
class Platform:
    directory: Path
    templates_dir: Path

    def active(self) -> contextlib.AbstractContextManager[None]:
        return platform_dirs(self.directory, self.templates_dir)


def kind_objects(include_subchart: bool = False) -> list[dict[str, Any]]:
    return render_chart(
        values_files=with_overlays(paths.VALUES_DIR / "kind.yaml"),
        release=RELEASE, namespace=NAMESPACE, include_subchart=include_subchart, validate=False,
    )  # fmt: skip


def render_kind(root: Path) -> Platform:
    configmaps = [o for o in kind_objects() if o.get("kind") == "ConfigMap" and o.get("data")]
    (platform,) = [o for o in configmaps if "platform.json" in o["data"]]
    (templates,) = [o for o in configmaps if "pod-templates" in o["metadata"]["name"]]
    env = Platform(root / "platform", root / "pod-templates")
    for directory, cm in ((env.directory, platform), (env.templates_dir, templates)):
        directory.mkdir(parents=True)
        directory.chmod(0o755)
        for key, text in cm["data"].items():
            (directory / key).write_text(text)
            (directory / key).chmod(0o644)
    return env


def load_dagbag(env: Platform) -> Any:
    from airflow.models.dagbag import DagBag

    if str(paths.DAGS_DIR) not in sys.path:  # as Airflow's DagBag does for the DAG folder
        sys.path.append(str(paths.DAGS_DIR))
    with env.active():
        return DagBag(dag_folder=str(paths.DAGS_DIR), include_examples=False, safe_mode=False)
