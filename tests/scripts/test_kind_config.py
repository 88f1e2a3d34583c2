"""The kind cluster config of `make kind-up`, checked by kind v0.31.0 itself.

kind has no --dry-run. `kind create cluster --config X` decodes the file strictly into the
v1alpha4 types (unknown fields are errors), converts and defaults it, runs Config.Validate(),
prints `Creating cluster "<name>" ...` and only then asks the node provider to pull the image
and create containers. So the real pinned kind binary is run against a stand-in `docker` (a
script in a temporary PATH directory, because there is no Docker engine here) that answers the
provider's availability probes (`docker -v`, `docker info`, `docker ps`), records every call,
and fails the first call that would create something. Reaching that point means kind accepted
the config; the recorded `docker inspect --type=image` call shows the node image kind resolved.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import paths

CLUSTER_TEMPLATE = paths.SCRIPTS_DIR / "kind" / "cluster.yaml"
KIND_UP = paths.SCRIPTS_DIR / "kind-up"
PINNED_IMAGE = "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f"


def _kind_binary() -> str | None:
    local = paths.REPO / "bin" / "kind"
    return str(local) if local.exists() else shutil.which("kind")


KIND = _kind_binary()
needs_kind = pytest.mark.skipif(KIND is None, reason="kind not built: run `make tools`")

# Stand-in for the docker CLI (test double: there is no Docker engine on this machine).
STUB_DOCKER = r"""#!/usr/bin/env bash
echo "$*" >>"$STUB_DOCKER_LOG"
case "$1" in
  -v) echo "Docker version 28.2.2, build e6534b4"; exit 0 ;;
  info) echo '{"CgroupDriver":"systemd","CgroupVersion":"2","MemoryLimit":true,"PidsLimit":true,"CPUShares":true,"SecurityOptions":["name=seccomp,profile=builtin","name=cgroupns"]}'; exit 0 ;;
  ps) exit 0 ;;
  inspect) [[ "$2" == "--type=image" ]] && exit 0 ;;
esac
echo "stub docker: refusing '$*' (no Docker engine in this test)" >&2
exit 1
"""


def rendered_config(shared_dir: Path) -> str:
    proc = subprocess.run(
        [str(KIND_UP), "--print-config"],
        env={**os.environ, "MLOPS_KIND_SHARED_DIR": str(shared_dir)},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def run_kind(config_text: str, tmp: Path) -> tuple[subprocess.CompletedProcess, str]:
    bindir = tmp / "stub-bin"
    bindir.mkdir(exist_ok=True)
    stub = bindir / "docker"
    stub.write_text(STUB_DOCKER)
    stub.chmod(0o755)
    log = tmp / "docker-calls.log"
    log.write_text("")
    config = tmp / "cluster.yaml"
    config.write_text(config_text)
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "STUB_DOCKER_LOG": str(log),
    }
    proc = subprocess.run(
        [KIND, "create", "cluster", "--config", str(config), "--kubeconfig", str(tmp / "kubeconfig")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, log.read_text()


def test_print_config_substitutes_the_shared_directory(tmp_path: Path) -> None:
    text = rendered_config(tmp_path / "shared")
    assert not re.search(r"@[A-Z_]+@", text), "a placeholder was left in the rendered config"
    cfg = yaml.safe_load(text)
    mounts = [m for n in cfg["nodes"] for m in n.get("extraMounts", [])]
    assert len(mounts) == 2
    assert {m["hostPath"] for m in mounts} == {str(tmp_path / "shared")}
    assert {m["containerPath"] for m in mounts} == {"/var/local/mlops-shared"}


def test_topology_gpu_worker_and_ingress_node(tmp_path: Path) -> None:
    cfg = yaml.safe_load(rendered_config(tmp_path))
    assert cfg["name"] == "mlops"
    roles = [n["role"] for n in cfg["nodes"]]
    assert roles == ["control-plane", "worker"]
    cp, worker = cfg["nodes"]
    assert {n["image"] for n in cfg["nodes"]} == {PINNED_IMAGE}
    assert cp["labels"] == {"ingress-ready": "true"}
    ports = {(p["containerPort"], p["hostPort"], p["listenAddress"]) for p in cp["extraPortMappings"]}
    assert ports == {(80, 18080, "127.0.0.1"), (443, 18443, "127.0.0.1")}
    assert worker["labels"] == {"nvidia.com/gpu.present": "true"}
    (patch,) = [yaml.safe_load(p) for p in worker["kubeadmConfigPatches"]]
    assert patch["kind"] == "JoinConfiguration"
    assert patch["nodeRegistration"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]


def test_pinned_image_is_the_default_of_the_pinned_kind() -> None:
    """kind v0.31.0's own default node image (its module source, fetched by `make tools`)."""
    makefile = (paths.REPO / "Makefile").read_text()
    assert re.search(r"^KIND_VERSION\s*:=\s*v0\.31\.0\s*$", makefile, re.M)
    gomodcache = (
        subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True).stdout.strip()
        if shutil.which("go")
        else ""
    )
    source = (
        Path(gomodcache)
        / "sigs.k8s.io"
        / "kind@v0.31.0"
        / "pkg"
        / "apis"
        / "config"
        / "defaults"
        / "image.go"
    )
    if not source.exists():
        pytest.skip(f"kind v0.31.0 module source not in the Go module cache ({source})")
    default = re.search(r'const Image = "([^"]+)"', source.read_text()).group(1)
    assert default == PINNED_IMAGE
    assert PINNED_IMAGE in CLUSTER_TEMPLATE.read_text()


@needs_kind
def test_kind_accepts_the_config_and_resolves_the_pinned_image(tmp_path: Path) -> None:
    proc, calls = run_kind(rendered_config(tmp_path / "shared"), tmp_path)
    out = proc.stdout + proc.stderr
    # kind got past decoding + validation ...
    assert 'Creating cluster "mlops"' in out, out
    # ... and asked the provider for exactly the pinned node image,
    assert f"inspect --type=image {PINNED_IMAGE}" in calls, calls
    # then failed only because the stand-in docker refused to create anything.
    assert proc.returncode != 0
    assert "stub docker: refusing 'network ls" in out, out


@needs_kind
@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["nodes"][1].update(labelz={"a": "b"}), "field labelz not found"),
        (lambda c: c["nodes"][1].update(role="gpu-worker"), "is not a valid node role"),
        (
            lambda c: c["nodes"][0]["extraPortMappings"].append(
                {"containerPort": 8080, "hostPort": 18080, "listenAddress": "127.0.0.1", "protocol": "TCP"}
            ),
            "port",
        ),
        (lambda c: c.update(apiVersion="kind.x-k8s.io/v1alpha3"), "unknown apiVersion"),
    ],
    ids=["unknown-field", "bad-role", "duplicate-host-port", "old-api"],
)
def test_kind_rejects_broken_configs(tmp_path: Path, mutate, expected: str) -> None:
    """The check above can fail: kind refuses these before creating anything."""
    cfg = yaml.safe_load(rendered_config(tmp_path / "shared"))
    mutate(cfg)
    proc, calls = run_kind(yaml.safe_dump(cfg), tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'Creating cluster "mlops"' not in out, out
    assert expected in out.lower() or expected in out, out
    assert "--type=image" not in calls
