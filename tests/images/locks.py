"""The image locks are subsets of requirements/mlflow.lock with the same versions.

The tests run in .venv-mlflow (built from requirements/mlflow.lock); each image installs its
own requirements.lock. Both must be the same versions, so the image locks are generated from
the venv lock: the dependency closure of each image's top-level requirements, read from the
installed distributions' metadata.

    .venv-mlflow/bin/python -m tests.images.locks write   # regenerate the image locks
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
VENV_LOCK = REPO / "requirements" / "mlflow.lock"
IMAGE_TOP_LEVEL = {
    # server (PostgreSQL + S3-compatible artifact stores) and model serving (scikit-learn)
    # + Flask-WTF: the basic-auth app (`--app-name basic-auth`, the `auth` extra of mlflow)
    "mlflow": ["mlflow", "flask-wtf", "scikit-learn", "pandas", "psycopg2-binary", "boto3"],
    # training task code: MLflow client side + scikit-learn
    "trainer": ["mlflow", "scikit-learn", "pandas", "requests"],
}
HEADER = (
    "# Generated from requirements/mlflow.lock by `python -m tests.images.locks write` (run with\n"
    "# .venv-mlflow): the dependency closure of {top}. Same versions as the tests run.\n"
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{path}: {line!r} is not pinned with =="
        pins[canonical(name)] = version.strip()
    return pins


def closure(top_level: list[str]) -> set[str]:
    """Every distribution needed by `top_level` in the running environment (markers evaluated)."""
    seen: set[str] = set()
    todo = [(canonical(n), frozenset()) for n in top_level]
    while todo:
        name, extras = todo.pop()
        key = name
        if key in seen and not extras:
            continue
        seen.add(key)
        dist = metadata.distribution(name)
        for raw in dist.requires or []:
            req = Requirement(raw)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((canonical(req.name), frozenset(req.extras)))
    return seen


def image_lock(image: str) -> str:
    pins = read_lock(VENV_LOCK)
    names = sorted(closure(IMAGE_TOP_LEVEL[image]))
    missing = [n for n in names if n not in pins]
    if missing:
        raise SystemExit(f"{VENV_LOCK} lacks {missing}: rebuild the lock")
    lines = [f"{n}=={pins[n]}" for n in names]
    return HEADER.format(top=", ".join(IMAGE_TOP_LEVEL[image])) + "\n".join(lines) + "\n"


def image_lock_path(image: str) -> Path:
    return REPO / "images" / image / "requirements.lock"


if __name__ == "__main__":
    if sys.argv[1:] != ["write"]:
        raise SystemExit(__doc__)
    for image in IMAGE_TOP_LEVEL:
        image_lock_path(image).write_text(image_lock(image))
        print(f"wrote {image_lock_path(image).relative_to(REPO)}")
