"""make kind-up / kind-down / kind-test fail fast with a clear message: for real when no Docker
engine answers (this machine), and with a stand-in `docker` for "not installed", "too little
memory" and "hangs"."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import paths
from tests.support.kind import KIND_UP


def docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.mark.skipif(docker_answers(), reason="a Docker engine answers here: `make kind-up` would really run")
@pytest.mark.parametrize("target", ["kind-up", "kind-test", "kind-down"])
def test_make_target_fails_fast_without_docker_engine(target: str) -> None:
    """For real: no Docker engine on this machine (docker CLI missing or daemon down)."""
    start = time.monotonic()
    proc = subprocess.run(["make", target], cwd=paths.REPO, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "ERROR in step preflight" in out, out
    assert ("does not answer" in out) or ("'docker' is not installed" in out), out
    assert "Docker" in out and ("Start Docker" in out or "Install Docker" in out), out
    # Nothing was built first: no venv, no tools, no cluster.
    assert "venv: building" not in out and "tools: building" not in out
    print(f"make {target}: failed in {took:.1f}s with:\n{out.strip()}")


def _tool_dir(tmp: Path, docker_script: str | None) -> Path:
    """A PATH directory with the basic tools kind-up's preflight uses, and a chosen `docker`."""
    bindir = tmp / "bin"
    bindir.mkdir()
    for tool in (
        "bash",
        "env",
        "dirname",
        "cat",
        "sed",
        "awk",
        "tail",
        "sleep",
        "grep",
        "kubectl",
        "mktemp",
        "rm",
    ):
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    if docker_script is not None:
        docker = bindir / "docker"
        docker.write_text("#!/usr/bin/env bash\n" + docker_script)
        docker.chmod(0o755)
    return bindir


def _preflight(tmp: Path, docker_script: str | None, **env: str) -> subprocess.CompletedProcess:
    bindir = _tool_dir(tmp, docker_script)
    return subprocess.run(
        [str(bindir / "bash"), str(KIND_UP), "--preflight"],
        env={"PATH": str(bindir), "HOME": str(tmp), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_preflight_docker_not_installed(tmp_path: Path) -> None:
    proc = _preflight(tmp_path, None)
    assert proc.returncode == 1
    assert "'docker' is not installed" in proc.stderr
    assert "https://docs.docker.com" in proc.stderr


def test_preflight_too_little_memory(tmp_path: Path) -> None:
    # stand-in docker: an engine with 4 GiB, the Docker Desktop default on some machines
    proc = _preflight(tmp_path, 'echo "4294967296 4 28.2.2"')
    assert proc.returncode == 1
    assert "Docker has 4096 MiB of memory" in proc.stderr
    assert "Settings > Resources > Memory" in proc.stderr


@pytest.mark.skipif(not shutil.which("kubectl"), reason="the preflight also requires kubectl")
def test_preflight_enough_memory_passes_and_warns_on_few_cpus(tmp_path: Path) -> None:
    proc = _preflight(tmp_path, 'echo "8589934592 2 28.2.2"')
    assert proc.returncode == 0, proc.stderr
    assert "Docker 28.2.2: 2 CPUs, 8192 MiB memory" in proc.stdout
    assert "warning: Docker has 2 CPUs" in proc.stdout


def test_preflight_engine_that_hangs_times_out(tmp_path: Path) -> None:
    start = time.monotonic()
    proc = _preflight(tmp_path, "sleep 30", MLOPS_KIND_DOCKER_TIMEOUT="2")
    assert time.monotonic() - start < 15
    assert proc.returncode == 1
    assert "no answer within 2s" in proc.stderr
