"""DAG test fixtures: the chart rendered for each environment file, fed to the DAGs.

By default the chart is rendered once per session with values/kind.yaml and
values/production.example.yaml and the repository's dags/ is checked; `make test-dags VALUES=<files>
DAGS=<folder>` (MLOPS_DAG_VALUES, MLOPS_DAG_FOLDER: tests/support/platform_env.py) checks another
folder against other values files. Then only the tests marked `dag_folder` run: the rules every
DAG folder must follow (tests/dags/policy.py, written in dags/README.md); the other tests check
the repository's own DAGs and values files and are deselected. The DAGs are parsed with
MLOPS_PLATFORM_DIR / MLOPS_POD_TEMPLATES_DIR pointing at the files of the rendered ConfigMaps.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.helm import HelmError
from tests.support.platform_env import (  # noqa: F401  (DAG_FILES, RELEASE, NAMESPACE: older imports)
    DAG_FILES,
    DAG_FOLDER,
    ENVIRONMENT_FILES,
    ENVIRONMENTS,
    NAMESPACE,
    RELEASE,
    PlatformEnv,
    custom_target,
    dags_importable,
    load_dagbag,
    render_environment,
    target_problems,
)

dags_importable()


def pytest_configure(config: pytest.Config) -> None:
    problems = target_problems()
    if problems:
        raise pytest.UsageError("make test-dags: " + "; ".join(problems))


def pytest_sessionstart(session: pytest.Session) -> None:
    """A values file of one's own that the chart refuses: one message, before any test."""
    if not custom_target():
        return
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="dag-values-"))
    for name in ENVIRONMENTS:
        try:
            render_environment(name, root)
        except (HelmError, AssertionError) as err:
            raise pytest.UsageError(
                f"make test-dags: VALUES: {name}: the chart does not render with this values file:\n{err}"
            ) from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With a folder or values files of one's own, only the rules every DAG folder follows run."""
    if not custom_target():
        return
    keep = [item for item in items if item.get_closest_marker("dag_folder")]
    dropped = [item for item in items if not item.get_closest_marker("dag_folder")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> list[str]:
    envs = ", ".join(f"{name} ({path})" for name, path in ENVIRONMENT_FILES.items())
    return [f"DAG folder {DAG_FOLDER} checked against: {envs}"]


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
    return {name: load_dagbag(DAG_FOLDER, env) for name, env in platform_envs.items()}
