"""Runtime parity: images/airflow installs exactly the Airflow/provider versions of the test lock."""

from __future__ import annotations

import re

from tests.support import paths

IMAGE_DIR = paths.IMAGES_DIR / "airflow"
LOCK = paths.REPO / "requirements" / "test.lock"


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"not an exact pin: {line!r}"
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    return pins


def test_image_requirements_equal_the_lock() -> None:
    lock = _pins(LOCK.read_text())
    image = _pins((IMAGE_DIR / "requirements.txt").read_text())
    providers = {n for n in lock if n.startswith("apache-airflow-providers-")}
    assert providers <= set(image), f"providers missing from the image: {sorted(providers - set(image))}"
    for name in ("apache-airflow-core", "apache-airflow-task-sdk", "kubernetes", "kubernetes-asyncio"):
        assert name in image, name
    drift = {n: (v, lock.get(n)) for n, v in image.items() if lock.get(n) != v}
    assert drift == {}, f"image pin != lock (image, lock): {drift}"


def test_dockerfile_is_the_official_image_of_the_locked_airflow() -> None:
    text = (IMAGE_DIR / "Dockerfile").read_text()
    lock = _pins(LOCK.read_text())
    (version,) = set(re.findall(r"^ARG AIRFLOW_VERSION=(\S+)$", text, re.M))
    assert version == lock["apache-airflow"] == "3.1.8"
    # the official image is the default of AIRFLOW_IMAGE (a stand-in or mirror only by build argument)
    assert re.search(r"^ARG AIRFLOW_IMAGE=apache/airflow:\$\{AIRFLOW_VERSION\}-python\$\{PYTHON_VERSION\}$", text, re.M)
    assert re.search(r"^FROM \$\{AIRFLOW_IMAGE\}$", text, re.M)
    assert re.search(r"^ARG PYTHON_VERSION=3\.11$", text, re.M), "same Python as the test venv"
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in text, "Airflow itself pinned on the pip line"
    assert "-r /opt/airflow/requirements-mlops.txt" in text and "pip check" in text


def _requirements(dist: str) -> set[str]:
    """Names of what an installed distribution requires (no extras, markers of this platform)."""
    import importlib.metadata

    from packaging.requirements import Requirement

    out = set()
    for text in importlib.metadata.requires(dist) or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.add(re.sub(r"[-_.]+", "-", req.name.lower()))
    return out


def test_image_has_dag_factory_and_what_it_needs() -> None:
    """The YAML pipelines are built by dag-factory in the DAG processor and workers: the image
    installs the locked version, and each of its requirements (and typer's) is pinned in the
    image or required by Airflow or a package the image pins (pip check then holds it)."""
    image = _pins((IMAGE_DIR / "requirements.txt").read_text())
    assert image["dag-factory"] == _pins(LOCK.read_text())["dag-factory"] == "1.1.0"
    brought = {"apache-airflow"} | set(image)
    for dist in ("apache-airflow-core", "apache-airflow-task-sdk", "kubernetes", *image):
        brought |= _requirements(dist)
    missing = (_requirements("dag-factory") | _requirements("typer")) - brought
    assert missing == set(), f"dag-factory needs {sorted(missing)}: pin them in images/airflow/requirements.txt"


def test_image_has_the_metadata_database_drivers() -> None:
    """The chart's metadata database is PostgreSQL (devDatabase, or yours): the image pins its
    drivers at the versions the tests ran, whatever its base brings."""
    image = _pins((IMAGE_DIR / "requirements.txt").read_text())
    lock = _pins(LOCK.read_text())
    for name in ("psycopg2-binary", "asyncpg"):
        assert name in image and image[name] == lock[name], name
