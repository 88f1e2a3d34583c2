"""The images install exactly what the tests run: locks derived from requirements/mlflow.lock,
Dockerfiles that install the trainer package from images/trainer (no second copy)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

from tests.images import locks


@pytest.mark.parametrize("image", sorted(locks.IMAGE_TOP_LEVEL))
def test_image_lock_is_generated_from_the_venv_lock(image: str) -> None:
    expected = locks.image_lock(image)
    actual = locks.image_lock_path(image).read_text()
    assert actual == expected, (
        f"{locks.image_lock_path(image)} drifted: run `python -m tests.images.locks write`"
    )


def test_venv_matches_its_lock() -> None:
    """.venv-mlflow has exactly the locked versions (the tests verify that set)."""
    for name, version in locks.read_lock(locks.VENV_LOCK).items():
        assert metadata.version(name) == version, (
            f"{name}: installed {metadata.version(name)}, locked {version}"
        )
    assert metadata.version("mlflow") == "3.17.2"


def _dockerfile(image: str) -> str:
    return (locks.REPO / "images" / image / "Dockerfile").read_text()


@pytest.mark.parametrize("image", ["mlflow", "trainer"])
def test_dockerfile_pinned_base_lock_and_non_root(image: str) -> None:
    text = _dockerfile(image)
    # The official base is the default of PYTHON_IMAGE (stand-ins only by build argument); the
    # only other stage is the scratch stage holding the offline wheels (bound, never copied).
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    froms = re.findall(r"^FROM\s+(.+)$", text, re.M)
    assert froms == ["scratch AS wheels", "${PYTHON_IMAGE}"], froms
    assert "requirements.lock" in text and "--no-deps" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0", "0:0"), users
    assert re.search(r"^USER\s+\d+", text, re.M), "numeric USER so runAsNonRoot can verify it"


def test_trainer_image_installs_the_package_the_tests_run() -> None:
    text = _dockerfile("trainer")
    assert re.search(r"^COPY .*src", text, re.M) and "pyproject.toml" in text
    assert "pip install --no-deps" in text
    # The tests run the editable install of images/trainer from .venv-mlflow: the very files
    # the Dockerfile copies (src/), not a second copy.
    import mlops_trainer

    src = (locks.REPO / "images" / "trainer" / "src").resolve()
    assert Path(mlops_trainer.__file__).resolve().is_relative_to(src), mlops_trainer.__file__
    assert metadata.version("mlops-trainer") in (locks.REPO / "images/trainer/pyproject.toml").read_text()
