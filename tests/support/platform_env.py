"""The chart rendered for an environment file, as the DAGs see it in the cluster.

`render_environment()` renders the umbrella with an environment's values file (tests/support/helm.py,
every object validated) and writes its platform ConfigMap (platform.json + its schema) and pod template
ConfigMap (<profile>.yaml) to a directory; `PlatformEnv.active()` points MLOPS_PLATFORM_DIR /
MLOPS_POD_TEMPLATES_DIR at it: the path the files take in the cluster (ConfigMap -> mount -> DAG
parse -> operator). `load_dagbag()` parses DAG files with it. Used by tests/dags (fixtures in its
conftest), the real API server of tests/scripts/test_kind_airflow_api.py and tests/bench.

Which folder against which values files: by default the repository's dags/ against
values/kind.yaml and values/production.example.yaml (ENVIRONMENTS "kind", "production.example").
`make test-dags VALUES=<files> DAGS=<folder>` sets MLOPS_DAG_VALUES (values files separated by
spaces, each one environment named by its path) and MLOPS_DAG_FOLDER; then only the tests marked
`dag_folder` (the rules every DAG folder must follow) run (tests/dags/conftest.py).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import paths
from .helm import render_chart
from .overlays import with_overlays

SHIPPED_ENVIRONMENTS = ("kind", "production.example")
VALUES_VARIABLE = "MLOPS_DAG_VALUES"
FOLDER_VARIABLE = "MLOPS_DAG_FOLDER"


def environment_files() -> dict[str, Path]:
    """Environment name -> values file: MLOPS_DAG_VALUES's files (named by their path as given),
    else the shipped values/kind.yaml and values/production.example.yaml."""
    given = os.environ.get(VALUES_VARIABLE, "").split()
    if given:
        return {item: Path(item).expanduser() for item in given}
    return {name: paths.VALUES_DIR / f"{name}.yaml" for name in SHIPPED_ENVIRONMENTS}


def dag_folder() -> Path:
    """The DAG folder under test: MLOPS_DAG_FOLDER, else the repository's dags/."""
    given = os.environ.get(FOLDER_VARIABLE, "").strip()
    return Path(given).expanduser() if given else paths.DAGS_DIR


def custom_target() -> bool:
    """True when MLOPS_DAG_VALUES or MLOPS_DAG_FOLDER points the DAG tests elsewhere."""
    return bool(os.environ.get(VALUES_VARIABLE, "").strip() or os.environ.get(FOLDER_VARIABLE, "").strip())


def target_problems() -> list[str]:
    """What is wrong with MLOPS_DAG_VALUES / MLOPS_DAG_FOLDER (files that are not there), as
    sentences naming the make variable; empty when they can be used."""
    problems = []
    for name, path in environment_files().items():
        if not path.is_file():
            problems.append(f"VALUES: {name}: no such values file ({path.resolve()})")
    folder = dag_folder()
    if not folder.is_dir():
        problems.append(f"DAGS: {folder}: no such DAG folder ({folder.resolve()})")
    elif not any(folder.glob("*.py")) and not any((folder / "pipelines").glob("*.y*ml")):
        problems.append(f"DAGS: {folder}: no DAG file (*.py) and no pipelines/*.yaml in it")
    return problems


ENVIRONMENT_FILES = environment_files()
ENVIRONMENTS = tuple(ENVIRONMENT_FILES)
DAG_FOLDER = dag_folder()
DAG_FILES = sorted(p for p in DAG_FOLDER.glob("*.py"))

# The DAG file that builds one DAG per YAML file of pipelines/ (mlops_platform/yaml_pipelines.py).
YAML_LOADER = "yaml_pipelines"
YAML_LOADER_FILE = YAML_LOADER + ".py"


def loader_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    """A DAG folder holding only the YAML loader and these files of pipelines/ (name -> text)."""
    import shutil

    folder = tmp_path / "dags"
    (folder / "pipelines").mkdir(parents=True)
    shutil.copy(paths.DAGS_DIR / YAML_LOADER_FILE, folder / YAML_LOADER_FILE)
    for name, text in files.items():
        (folder / "pipelines" / name).write_text(text)
    return folder


def yaml_dags(dag_dir: Path = DAG_FOLDER) -> set[str]:
    from mlops_platform.yaml_pipelines import pipeline_files

    return {p.stem for p in pipeline_files(dag_dir)}


def expected_dags(dag_dir: Path = DAG_FOLDER) -> set[str]:
    """The DAG ids the folder should produce, discovered rather than listed: one DAG per
    `*.py` file of the DAG folder, named like the file, and one per YAML file of `pipelines/`,
    named like that file (adding a pipeline needs no test edit)."""
    return ({p.stem for p in sorted(dag_dir.glob("*.py"))} - {YAML_LOADER}) | yaml_dags(dag_dir)
RELEASE = "mlops"
NAMESPACE = "mlops"


def dags_importable() -> None:
    """Airflow's bundle DagBag puts the DAG folder on sys.path; so do the tests (mlops_platform).
    A DAG folder of its own without the helper package uses the repository's."""
    for folder in (DAG_FOLDER, paths.DAGS_DIR):
        if str(folder) not in sys.path:
            sys.path.append(str(folder))


@contextlib.contextmanager
def platform_dirs(directory: Path, templates_dir: Path) -> Iterator[None]:
    """MLOPS_PLATFORM_DIR / MLOPS_POD_TEMPLATES_DIR pointed at these directories in the block."""
    saved = {k: os.environ.get(k) for k in ("MLOPS_PLATFORM_DIR", "MLOPS_POD_TEMPLATES_DIR")}
    os.environ["MLOPS_PLATFORM_DIR"] = str(directory)
    os.environ["MLOPS_POD_TEMPLATES_DIR"] = str(templates_dir)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def write_platform_files(source: Path, directory: Path, platform: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Copy the platform ConfigMap's files (platform.json, its schema, ...) from `source` to
    `directory`, platform.json being `platform` with these top-level keys replaced; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file():
            (directory / item.name).write_bytes(item.read_bytes())
    doc = {**copy.deepcopy(platform), **changes}
    (directory / "platform.json").write_text(json.dumps(doc))
    return doc


@dataclass
class PlatformEnv:
    """One environment file rendered: where its platform.json and pod templates were written."""

    name: str
    directory: Path
    templates_dir: Path
    platform: dict[str, Any]
    pod_templates: dict[str, dict[str, Any]]
    objects: list[dict[str, Any]]

    def active(self) -> contextlib.AbstractContextManager[None]:
        """MLOPS_PLATFORM_DIR / MLOPS_POD_TEMPLATES_DIR set to this environment's files."""
        return platform_dirs(self.directory, self.templates_dir)

    def with_platform(self, directory: Path, name: str | None = None, **changes: Any) -> PlatformEnv:
        """A copy whose platform.json has these top-level keys replaced, written to `directory`.

        The other files of the platform ConfigMap (the schema platform.json is read with) are copied;
        the pod templates are shared.
        """
        doc = write_platform_files(self.directory, directory, self.platform, **changes)
        return PlatformEnv(name or self.name, directory, self.templates_dir, doc, self.pod_templates, self.objects)


def render_environment(name: str, root: Path, values_file: Path | None = None) -> PlatformEnv:
    """Render the chart for environment `name` (its values file: `values_file`, else
    ENVIRONMENT_FILES[name], else values/<name>.yaml) and write its platform files under `root`."""
    if values_file is None:
        values_file = ENVIRONMENT_FILES.get(name, paths.VALUES_DIR / f"{name}.yaml")
    objects = render_chart(
        values_files=with_overlays(values_file),
        release=RELEASE,
        namespace=NAMESPACE,
    )
    configmaps = [o for o in objects if o.get("kind") == "ConfigMap"]
    platform_cms = [o for o in configmaps if "platform.json" in (o.get("data") or {})]
    assert len(platform_cms) == 1, (
        f"{name}: expected one ConfigMap with platform.json, got {len(platform_cms)}"
    )
    platform = json.loads(platform_cms[0]["data"]["platform.json"])
    template_cms = [
        o
        for o in configmaps
        if (o.get("data") or {})
        and all(k.endswith(".yaml") for k in o["data"])
        and "pod-templates" in o["metadata"]["name"]
    ]
    assert len(template_cms) == 1, f"{name}: expected one pod-templates ConfigMap, got {len(template_cms)}"
    directory = root / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    templates_dir = directory / "pod-templates"
    templates_dir.mkdir(parents=True)
    # Every file of the platform ConfigMap (platform.json and the schema it is read with).
    for key, text in platform_cms[0]["data"].items():
        (directory / key).write_text(text)
    pod_templates = {}
    for key, text in template_cms[0]["data"].items():
        (templates_dir / key).write_text(text)
        pod_templates[key[: -len(".yaml")]] = yaml.safe_load(text)
    return PlatformEnv(name, directory, templates_dir, platform, pod_templates, objects)


def load_dagbag(dag_file: Path | str, env: PlatformEnv) -> Any:
    from airflow.models.dagbag import DagBag

    with env.active():
        return DagBag(dag_folder=str(dag_file), include_examples=False, safe_mode=False)


def check_dag_file_imports(dag_file: Path, env: PlatformEnv) -> None:
    """The `imports` and `one-dag-per-file` rules for one DAG file in one environment."""
    bag = load_dagbag(dag_file, env)
    assert bag.import_errors == {}, "\n".join(bag.import_errors.values())
    if dag_file.stem == YAML_LOADER:
        assert set(bag.dags) == yaml_dags(), "one DAG per YAML pipeline file, named like it"
        return
    assert len(bag.dags) == 1, f"{dag_file.name}: one DAG per file, got {sorted(bag.dags)}"
    assert next(iter(bag.dags)) == dag_file.stem, "the DAG id is the file name"
