"""The four images as built by scripts/images-build: present, non-root, lean, on which base.

Prints each image's build time and size (also in .cache/images/report.tsv). STAND-IN bases
(see conftest.py) are named in the output: they exist only because no container registry can
be reached here; the Dockerfiles keep the official bases as their defaults."""

from __future__ import annotations

import json
import re

import pytest

from tests.images.docker import engine
from tests.support import paths

# The user each image runs as, and what the chart's security contexts expect of it.
USERS = {"trainer": "10001:10001", "mlflow": "10001:10001", "git-server": "10001:10001", "airflow": "airflow"}


def _inspect(ref: str) -> dict:
    return json.loads(engine.docker("image", "inspect", ref).stdout)[0]


@pytest.mark.parametrize("name", engine.IMAGES)
def test_image_built_with_report(built_images, name: str) -> None:
    info = _inspect(engine.image(name))
    entry = built_images.get(name)
    assert entry, f"{name} missing from {engine.REPORT}"
    base = entry["base"] + ("" if entry["kind"] == "official" else f" = STAND-IN for {entry['kind'][8:]}")
    print(f"\n{entry['ref']}: built in {entry['seconds']} s, {int(info['Size']) / 1e6:.0f} MB, base {base}")
    assert int(entry["bytes"]) == info["Size"]


@pytest.mark.parametrize("name", engine.IMAGES)
def test_runs_as_the_user_the_chart_expects(built_images, name: str) -> None:
    assert _inspect(engine.image(name))["Config"]["User"] == USERS[name]
    uid = engine.docker("run", "--rm", "--network", "none", "--label", engine.LABEL,
                        "--entrypoint", "id", engine.image(name), "-u").stdout.strip()  # fmt: skip
    assert uid == {"airflow": "50000"}.get(name, "10001")


@pytest.mark.parametrize("name", engine.IMAGES)
def test_lean_no_compilers_caches_or_build_inputs(built_images, name: str) -> None:
    """No compiler, no pip/apt cache, no wheel or .deb of the offline build in the image."""
    script = (
        "for c in gcc cc g++ c++ make; do command -v $c; done; "
        "ls -d /root/.cache/pip /tmp/.cache /home/*/.cache/pip /var/cache/apt/archives/*.deb "
        "/var/lib/apt/lists/*_Packages /wheels /debs /build 2>/dev/null; "
        # the mount points of the RUN steps' bind mounts stay as empty directories
        "find /tmp/wheels /tmp/debs -mindepth 1 2>/dev/null; "
        "find / -xdev \\( -name '*.whl' -o -name '*.deb' \\) -not -path '/proc/*' 2>/dev/null "
        "| grep -v -e '/site-packages/pip/' -e '/ensurepip/' -e '/python-wheels/' ; true"
    )
    out = engine.docker("run", "--rm", "--network", "none", "--user", "0", "--label", engine.LABEL,
                        "--entrypoint", "sh", engine.image(name), "-c", script).stdout  # fmt: skip
    assert out.strip() == "", f"{name} carries build leftovers:\n{out}"


def test_dockerfiles_default_to_the_official_bases() -> None:
    """Stand-ins are chosen by build argument only; the defaults users get are the official
    images (scripts/images-build refuses to build when a default drifts)."""
    expect = {
        "trainer": "ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm",
        "mlflow": "ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm",
        "git-server": "ARG DEBIAN_IMAGE=debian:12.12-slim",
        "airflow": "ARG AIRFLOW_IMAGE=apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}",
    }
    for name, line in expect.items():
        text = (paths.IMAGES_DIR / name / "Dockerfile").read_text()
        assert re.search(rf"^{re.escape(line)}$", text, re.M), (name, line)
        assert "standin" not in text.lower(), f"{name}: a stand-in named in the Dockerfile"
        # offline builds: every package step reads the bound wheels/debs, nothing is COPY'd in
        assert not re.search(r"^COPY .*wheels", text, re.M) or "AS wheels" in text
