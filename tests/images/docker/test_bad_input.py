"""Bad input of the image scripts: one clear line and a non-zero exit, nothing left running.
These need no engine (they run in `make test-docker` beside the container tests)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from tests.support import paths

SCRIPTS = paths.SCRIPTS_DIR


def _run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_BUILDKIT")}
    env.update(extra)
    return env


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ERROR")]


def test_docker_host_that_does_not_answer(tmp_path: Path) -> None:
    env = _env(DOCKER_HOST=f"unix://{tmp_path}/nothing.sock", DOCKER_STATE_DIR=str(tmp_path / "state"))
    r = _run([str(SCRIPTS / "docker-engine"), "run", "true"], env)
    assert r.returncode == 1
    (line,) = _error_lines(r.stderr)
    assert "does not answer" in line and "nothing.sock" in line


def test_daemon_that_never_answers_is_stopped(tmp_path: Path) -> None:
    """A dockerd that starts but never answers: stopped after DOCKER_START_TIMEOUT, one line."""
    fake = tmp_path / "bin"
    fake.mkdir()
    # A name only this fake carries (argv[0]), so the leftover scan below sees nothing else.
    marker = f"mlops-fake-dockerd-{uuid.uuid4().hex}"
    (fake / "dockerd").write_text(f"#!/bin/bash\nexec -a {marker} sleep 300\n")
    (fake / "dockerd").chmod(0o755)
    state = tmp_path / "state"
    env = _env(PATH=f"{fake}:{os.environ['PATH']}", DOCKER_STATE_DIR=str(state), DOCKER_START_TIMEOUT="3")
    r = _run([str(SCRIPTS / "docker-engine"), "run", "true"], env)
    assert r.returncode == 1
    (line,) = _error_lines(r.stderr)
    assert "did not answer within 3s" in line and "stopped it" in line
    # nothing of that engine is left: no process started with its state or runtime directory
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in text or "mlops-docker-" in text and str(state) in text:
            left.append(text)
    assert left == []


def test_images_build_without_an_engine(tmp_path: Path) -> None:
    env = _env(DOCKER_HOST=f"unix://{tmp_path}/nothing.sock", IMAGES_CACHE=str(tmp_path / "cache"))
    r = _run([str(SCRIPTS / "images-build"), "trainer"], env)
    assert r.returncode == 1
    (line,) = _error_lines(r.stderr)
    assert "Docker engine does not answer" in line


def test_wheel_missing_from_the_wheelhouse(tmp_path: Path) -> None:
    """The build context names the packages missing from the wheelhouse before any build."""
    house = tmp_path / "wheelhouse"
    house.mkdir()
    (house / "six-1.17.0-py2.py3-none-any.whl").write_bytes(b"")
    lock = tmp_path / "requirements.lock"
    lock.write_text("six==1.17.0\nnumpy==2.4.6\n")
    r = _run([str(SCRIPTS / "images-context"), "link-wheels", str(house), str(tmp_path / "ctx"), str(lock)], _env())
    assert r.returncode == 1
    (line,) = _error_lines(r.stderr)
    assert line.endswith("numpy")
    assert (tmp_path / "ctx" / "six-1.17.0-py2.py3-none-any.whl").exists()
