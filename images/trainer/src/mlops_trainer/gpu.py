"""GPU visibility, without importing a deep-learning framework.

The scikit-learn models run on CPU; the pipeline still records whether the pod saw a GPU,
so a GPU profile that landed on a node without one (or a missing device plugin) shows up
in the MLflow run.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInfo:
    visible: bool
    count: int
    source: str  # nvidia-smi | device-files | env | none
    names: tuple[str, ...] = ()

    def as_tags(self) -> dict[str, str]:
        tags = {
            "mlops.gpu.visible": str(self.visible).lower(),
            "mlops.gpu.count": str(self.count),
            "mlops.gpu.source": self.source,
        }
        if self.names:
            tags["mlops.gpu.names"] = ", ".join(self.names)[:250]
        return tags


def _env_devices(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    if value in ("", "none", "void", "-1"):
        return []
    return [d for d in value.split(",") if d.strip()]


def detect(timeout: float = 5.0) -> GpuInfo:
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            proc = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired):
            proc = None
        if proc is not None and proc.returncode == 0:
            names = tuple(line.strip() for line in proc.stdout.splitlines() if line.startswith("GPU "))
            return GpuInfo(visible=bool(names), count=len(names), source="nvidia-smi", names=names)
    devices = sorted(p for p in glob.glob("/dev/nvidia[0-9]*"))
    if devices:
        return GpuInfo(visible=True, count=len(devices), source="device-files")
    for var in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        ids = _env_devices(var)
        if ids and ids != ["all"]:
            # Environment only: the runtime promised devices, none is reachable from here.
            return GpuInfo(visible=False, count=0, source=f"env:{var}={','.join(ids)}")
    return GpuInfo(visible=False, count=0, source="none")
