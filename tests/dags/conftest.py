"""DAG test fixtures: the chart rendered for each environment file, fed to the DAGs.

The chart is rendered once per session with values/kind.yaml and values/production.example.yaml
(tests/support/helm.py, every object validated); its platform ConfigMap (platform.json) and pod
template ConfigMap (<profile>.yaml) are written to a temporary directory, and the DAGs are
parsed with MLOPS_PLATFORM_DIR / MLOPS_POD_TEMPLATES_DIR pointing at it: the same path the
files take in the cluster (ConfigMap -> mount -> DAG parse -> operator).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import paths
from tests.support.helm import render_chart

ENVIRONMENTS = ("kind", "production.example")
DAG_FILES = sorted(p for p in paths.DAGS_DIR.glob("*.py"))
RELEASE = "mlops"
NAMESPACE = "mlops"

# Airflow's bundle DagBag puts the DAG folder on sys.path; so do the tests (mlops_platform).
if str(paths.DAGS_DIR) not in sys.path:
    sys.path.append(str(paths.DAGS_DIR))


def _known_hosts_overlay() -> dict[str, Any]:
    """kind.yaml needs the git server's pinned host key (generated at kind-up): make one."""
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + os.urandom(32)
    line = f"git-server.mlops.svc.cluster.local ssh-ed25519 {base64.b64encode(blob).decode()}\n"
    return {"airflow": {"dags": {"gitSync": {"knownHosts": line}}}}


@dataclass
class PlatformEnv:
    """One environment file rendered: where its platform.json and pod templates were written."""

    name: str
    directory: Path
    templates_dir: Path
    platform: dict[str, Any]
    pod_templates: dict[str, dict[str, Any]]
    objects: list[dict[str, Any]]

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """MLOPS_PLATFORM_DIR / MLOPS_POD_TEMPLATES_DIR set to this environment's files."""
        saved = {k: os.environ.get(k) for k in ("MLOPS_PLATFORM_DIR", "MLOPS_POD_TEMPLATES_DIR")}
        os.environ["MLOPS_PLATFORM_DIR"] = str(self.directory)
        os.environ["MLOPS_POD_TEMPLATES_DIR"] = str(self.templates_dir)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def render_environment(name: str, root: Path) -> PlatformEnv:
    values = _known_hosts_overlay() if name == "kind" else None
    objects = render_chart(
        values=values,
        values_files=[paths.VALUES_DIR / f"{name}.yaml"],
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
    directory = root / name
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


@pytest.fixture(scope="session")
def platform_envs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PlatformEnv]:
    root = tmp_path_factory.mktemp("platform")
    return {name: render_environment(name, root) for name in ENVIRONMENTS}


@pytest.fixture(scope="session", params=ENVIRONMENTS)
def platform_env(request: pytest.FixtureRequest, platform_envs: dict[str, PlatformEnv]) -> PlatformEnv:
    return platform_envs[request.param]


def load_dagbag(dag_file: Path | str, env: PlatformEnv) -> Any:
    from airflow.models.dagbag import DagBag

    with env.active():
        return DagBag(dag_folder=str(dag_file), include_examples=False, safe_mode=False)


@pytest.fixture(scope="session")
def dagbags(platform_envs: dict[str, PlatformEnv]) -> dict[str, Any]:
    """The whole DAG folder parsed once per environment."""
    return {name: load_dagbag(paths.DAGS_DIR, env) for name, env in platform_envs.items()}
