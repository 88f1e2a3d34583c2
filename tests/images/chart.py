"""Render one template of our chart with the pinned helm, from .venv-mlflow.

tests/support/helm.py needs the Airflow venv's packages (kubernetes-validate); here the
layer-only copy of the chart is made the same way (the official chart cannot be downloaded)
and the objects are only parsed: the chart tests validate them."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.support import paths

REL, NS = "mlops", "mlops"


def render_template(template: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="chart-"))
    try:
        chart = tmp / "airflow-mlops"
        shutil.copytree(paths.CHART_DIR, chart, ignore=shutil.ignore_patterns("charts", "*.tgz"))
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        meta.pop("dependencies", None)
        (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
        (chart / "Chart.lock").unlink(missing_ok=True)
        (tmp / "values.yaml").write_text(yaml.safe_dump(values))
        proc = subprocess.run(
            [paths.helm_binary(), "template", REL, str(chart), "-n", NS,
             "--kube-version", paths.DEFAULT_KUBE_VERSION, "-f", str(tmp / "values.yaml"),
             "--show-only", template],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def local_command(command: list[str], host_flag: str, port_flag: str, port: int) -> list[str]:
    """The rendered command with the binary from .venv-mlflow, bound to 127.0.0.1:<port>."""
    from tests.images import procs

    cmd = list(command)
    cmd[0] = str(procs.BIN / cmd[0])
    cmd[cmd.index(host_flag) + 1] = "127.0.0.1"
    cmd[cmd.index(port_flag) + 1] = str(port)
    return cmd
