"""GPU visibility is recorded on the run. This machine has no GPU: a stand-in `nvidia-smi`
(a shell script printing what the real one prints for `-L`) plays the GPU node; that is
the only thing replaced."""

from __future__ import annotations

import os
import stat

import pytest
from mlflow import MlflowClient

from tests.images.trainer_cli import pipeline_args, pod_env, summary, trainer

pytestmark = pytest.mark.processes

FAKE_SMI = """#!/bin/sh
[ "$1" = "-L" ] || exit 2
echo "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-11111111-2222-3333-4444-555555555555)"
echo "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-66666666-7777-8888-9999-000000000000)"
"""


def test_visible_gpus_are_tagged(mlflow_server, tmp_path) -> None:
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    smi = fake_bin / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    env = pod_env(tmp_path / "home", mlflow_server.uri)
    env.update({"PATH": f"{fake_bin}:{env['PATH']}", "MLOPS_PROFILE": "gpu-2", "MLOPS_GPUS": "2"})
    ws = tmp_path / "ws"
    ws.mkdir()
    summary(trainer("prepare", ws, pipeline_args("prepare"), env))
    run_id = summary(trainer("train", ws, pipeline_args("train"), env))["run_id"]
    tags = MlflowClient(mlflow_server.uri).get_run(run_id).data.tags
    assert tags["mlops.gpu.visible"] == "true"
    assert tags["mlops.gpu.count"] == "2"
    assert tags["mlops.gpu.source"] == "nvidia-smi"
    assert "A100" in tags["mlops.gpu.names"]
    assert tags["mlops.profile"] == "gpu-2" and tags["mlops.gpus"] == "2"


@pytest.mark.parametrize(
    "env,visible,source",
    [
        ({}, False, "none"),
        ({"CUDA_VISIBLE_DEVICES": "0,1"}, False, "env:CUDA_VISIBLE_DEVICES=0,1"),
        ({"CUDA_VISIBLE_DEVICES": ""}, False, "none"),
        ({"NVIDIA_VISIBLE_DEVICES": "void"}, False, "none"),
    ],
)
@pytest.mark.machine_may_differ
def test_detection_without_a_reachable_device(monkeypatch, tmp_path, env, visible, source) -> None:
    from mlops_trainer import gpu

    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    for var in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if any(os.path.exists(f"/dev/nvidia{i}") for i in range(8)):
        pytest.skip("this machine has NVIDIA device files")
    info = gpu.detect()
    assert (info.visible, info.count, info.source) == (visible, 0, source)
