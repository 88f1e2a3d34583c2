"""Container tier: the four images built for real and run end to end (`make test-docker`).

`make test-docker` = `scripts/docker-engine run` (a private Docker engine from Debian's docker.io,
own socket and directories, stopped at the end) around `scripts/images-build` and these tests.
STAND-INS, only for what cannot exist on a machine without a container registry: when the
official base images (python:3.11.7-slim-bookworm, debian:12.12-slim,
apache/airflow:3.1.8-python3.11) are not in the engine, the images are built on bases made from
Debian bookworm with debootstrap (and, for Airflow, the project's locked Airflow from the
wheelhouse); tests/images/docker/test_images.py prints which. Everything else is real: the
Dockerfiles, the wheels of the locks, the chart's rendered commands and security contexts, the
DAGs' rendered task pods, the servers (on 127.0.0.1, --network host).

Outside `make test-docker` (no DOCKER_HOST that answers) the tests skip, unless
MLOPS_REQUIRE_DOCKER=1 (set by the Makefile): then a missing engine or image is an error.
"""

from __future__ import annotations

import os

import pytest

from tests.images.docker import engine
from tests.images.docker.platform import Platform, render_kind

REQUIRE = os.environ.get("MLOPS_REQUIRE_DOCKER") == "1"


@pytest.fixture(scope="session")
def built_images() -> dict[str, dict[str, str]]:
    """The images of scripts/images-build (all four must exist) and its report."""
    if not engine.engine_answers():
        reason = "no Docker engine answers (DOCKER_HOST): run `make test-docker`"
        if REQUIRE:
            pytest.fail(reason)
        pytest.skip(reason)
    missing = [
        n for n in engine.IMAGES if engine.docker("image", "inspect", engine.image(n), check=False).returncode
    ]
    assert not missing, f"images not built: {missing} (scripts/images-build)"
    return engine.read_report()


@pytest.fixture(scope="session", autouse=True)
def _no_container_left() -> None:
    """Every container a test started is gone at the end of the session."""
    yield
    engine.remove_scratch()
    if engine.engine_answers():
        left = engine.docker("ps", "-aq", "--filter", f"label={engine.LABEL}", check=False).stdout.split()
        if left:
            engine.docker("rm", "-f", *left, check=False)


@pytest.fixture(scope="session")
def kind_env(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """The chart rendered with values/kind.yaml (the platform that runs these images)."""
    return render_kind(tmp_path_factory.mktemp("platform"))
