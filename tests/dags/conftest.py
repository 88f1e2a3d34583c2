"""DAG test fixtures: the chart rendered for each environment file, fed to the DAGs.

The chart is rendered once per session with values/kind.yaml and values/production.example.yaml
(tests/support/platform_env.py); the DAGs are parsed with MLOPS_PLATFORM_DIR /
MLOPS_POD_TEMPLATES_DIR pointing at the files of its ConfigMaps.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import paths
from tests.support.platform_env import (  # noqa: F401  (DAG_FILES, RELEASE, NAMESPACE: older imports)
    DAG_FILES,
    ENVIRONMENTS,
    NAMESPACE,
    RELEASE,
    PlatformEnv,
    dags_importable,
    load_dagbag,
    render_environment,
)

dags_importable()


@pytest.fixture(scope="session")
def platform_envs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PlatformEnv]:
    root = tmp_path_factory.mktemp("platform")
    return {name: render_environment(name, root) for name in ENVIRONMENTS}


@pytest.fixture(scope="session", params=ENVIRONMENTS)
def platform_env(request: pytest.FixtureRequest, platform_envs: dict[str, PlatformEnv]) -> PlatformEnv:
    return platform_envs[request.param]


@pytest.fixture(scope="session")
def dagbags(platform_envs: dict[str, PlatformEnv]) -> dict[str, Any]:
    """The whole DAG folder parsed once per environment."""
    return {name: load_dagbag(paths.DAGS_DIR, env) for name, env in platform_envs.items()}
