"""scripts/images-refs: the image names `make images` tags and `make push` pushes come from the
chart rendered with the values file, and nowhere else (no prefix or tag of their own, no stale
names in the docs). No Docker needed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import paths
from tests.support.helm import helm_template
from tests.support.registry import images_refs

refs = images_refs()
PRODUCTION = paths.VALUES_DIR / "production.example.yaml"
KIND = paths.VALUES_DIR / "kind.yaml"


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(paths.SCRIPTS_DIR / script), *args]
    if script != "images-build":
        cmd.insert(0, sys.executable)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, cwd=paths.REPO)


def rendered(*values: Path, sets: tuple[str, ...] = ()) -> list[dict]:
    """The chart as scripts/images-refs renders it (memoised by the harness)."""
    extra = [a for s in ("airflow.dags.gitSync.enabled=false", *sets) for a in ("--set", s)]
    text = helm_template(values_files=values, release="mlops", namespace="mlops", extra_args=extra)
    return [d for d in yaml.safe_load_all(text) if d]


def test_production_example_names() -> None:
    assert refs.refs_from_render(rendered(PRODUCTION)) == {
        "airflow": "nexus.example.com:8443/mlops/airflow:3.1.8",
        "mlflow": "nexus.example.com:8443/mlops/mlflow:0.1.0",
        "trainer": "nexus.example.com:8443/mlops/trainer:0.1.0",
    }


def test_kind_names_and_the_git_server_from_the_command_line() -> None:
    out = run("images-refs", "airflow", "git-server", "mlflow", "trainer")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"{n}\tmlops.local/{n}:dev" for n in ("airflow", "git-server", "mlflow", "trainer")]
    assert refs.DEFAULT_VALUES == KIND


def test_names_follow_the_values_not_the_folder(tmp_path: Path) -> None:
    """Every key the chart reads changes the name: prefix, repositories, tags, the Airflow image."""
    overlay = tmp_path / "v.yaml"
    overlay.write_text(
        "images: {prefix: 'registry.example.org:5000/team/', trainer: {repository: ml/trainer-cpu, tag: '2.0.1'}}\n"
        "registry: {server: 'registry.example.org:5000'}\n"
        "mlflow: {image: {repository: tracking, tag: '9'}}\n"
        "airflow: {defaultAirflowRepository: registry.example.org:5000/team/af, defaultAirflowTag: '3.1.8-1'}\n")
    assert refs.refs_from_render(rendered(PRODUCTION, overlay)) == {
        "airflow": "registry.example.org:5000/team/af:3.1.8-1",
        "mlflow": "registry.example.org:5000/team/tracking:9",
        "trainer": "registry.example.org:5000/team/ml/trainer-cpu:2.0.1",
    }


@pytest.mark.parametrize(
    ("values", "sets", "message"),
    [
        (paths.CI_VALUES_DIR / "01-minimal-values.yaml", (),
         r"airflow: the values run the official image apache/airflow:3\.1\.8, not the one images/airflow builds .*"
         r"set airflow\.images\.airflow\.repository \(or airflow\.defaultAirflowRepository\)"),
        (KIND, ("airflow.images.airflow.digest=sha256:" + "a" * 64,),
         r"airflow: the values name mlops\.local/airflow@sha256:a+ by digest; .*give a tag"),
    ],
    ids=["official-airflow-image", "digest"],
)
def test_names_refused_with_the_reason(values: Path, sets: tuple[str, ...], message: str) -> None:
    with pytest.raises(refs.RefsError, match=message):
        refs.refs_from_render(rendered(values, sets=sets))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--values", str(KIND), "--set", "images.trainer.tag=latest"],
         r"(?s)^ERROR images: the chart does not render with .*kind\.yaml:\n.*images\.trainer\.tag=\"latest\""),
        (["--values", "/nonexistent/values.yaml"], r"^ERROR images: values file /nonexistent/values\.yaml does not exist"),
        (["nginx"], r"^ERROR images: nginx: not an image of images/ \(airflow, mlflow, trainer, git-server\)"),
    ],
    ids=["chart-refuses", "missing-file", "unknown-image"],
)
def test_command_line_refusals(args: list[str], message: str) -> None:
    out = run("images-refs", *args)
    assert out.returncode == 1 and out.stdout == ""
    assert re.search(message, out.stderr), out.stderr


def test_every_image_folder_has_a_name() -> None:
    """A new images/<name> must be named by the chart or get a fixed name: the flow builds it."""
    folders = {p.parent.name for p in paths.IMAGES_DIR.glob("*/Dockerfile")}
    assert folders == set(refs.PLATFORM) | set(refs.FIXED)


def test_images_build_and_push_refuse_bad_values_before_any_engine(tmp_path: Path) -> None:
    for script in ("images-build", "images-push"):
        out = run(script, "--values", str(tmp_path / "missing.yaml"))
        assert out.returncode == 1, script
        assert f"values file {tmp_path / 'missing.yaml'} does not exist" in out.stderr, (script, out.stderr)
    out = run("images-build", "--prefix", "x")
    assert out.returncode == 1 and "unknown option --prefix" in out.stderr
    out = run("images-push", "git-server")
    assert out.returncode == 1 and "git-server: not an image the chart deploys (push airflow, mlflow, trainer)" in out.stderr


def test_readme_table_is_what_the_production_example_names() -> None:
    readme = (paths.REPO / "README.md").read_text()
    section = readme.split("### Build and push for a release", 1)[1].split("```", 1)[0]
    assert set(re.findall(r"`(nexus\.example\.com:8443/[^`]+)`", section)) == set(
        refs.refs_from_render(rendered(PRODUCTION)).values())


def test_no_other_naming_left_in_scripts_and_docs() -> None:
    """The names have one source: no IMAGE_PREFIX/IMAGE_TAG, no hand-written build or push of a
    fixed name in a README or Dockerfile, no target that does not exist."""
    docs = [paths.REPO / "README.md", *paths.IMAGES_DIR.glob("*/README.md"), *paths.IMAGES_DIR.glob("*/Dockerfile"),
            *paths.IMAGES_DIR.glob("README.md")]
    makefile = (paths.REPO / "Makefile").read_text()
    for f in docs:
        text = f.read_text()
        assert not re.search(r"docker build [^\n]*-t \S|docker (push|tag) \S+/", text), f"{f}: a hand-written image name"
        for target in re.findall(r"`make ([a-z][a-z0-9-]*)", text):
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"{f}: make {target} does not exist"
    for f in [*paths.SCRIPTS_DIR.rglob("*"), *(paths.REPO / "tests").rglob("*.py")]:
        if f.is_file() and f.suffix not in (".pyc",) and f.name != "test_images_refs.py":
            text = f.read_text(errors="replace")
            assert not re.search(r"(?<![.\w])IMAGE_(PREFIX|TAG)\b", text), f"{f} still reads IMAGE_PREFIX/IMAGE_TAG"
