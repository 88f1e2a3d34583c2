"""scripts/kind/lib.sh: the go-template kind-up waits with, run by Go's text/template (as
kubectl does)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.kind import KIND_DIR

GO_TEMPLATE_RUNNER = """package main

import (
	"encoding/json"
	"os"
	"text/template"
)

func main() {
	var data interface{}
	if err := json.NewDecoder(os.Stdin).Decode(&data); err != nil {
		panic(err)
	}
	t := template.Must(template.New("output").Parse(os.Args[1]))
	if err := t.Execute(os.Stdout, data); err != nil {
		panic(err)
	}
}
"""


@pytest.mark.skipif(
    not shutil.which("go"), reason="needs Go (kubectl's -o go-template is Go's text/template)"
)
def test_unready_pods_template(tmp_path: Path) -> None:
    lib = (KIND_DIR / "lib.sh").read_text()
    body = lib[lib.index("unready_pods() {") :]
    template = re.search(r"-o go-template='(.*)'\n", body).group(1)
    pods = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "metadata": {"name": "ready"},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            },
            {
                "metadata": {"name": "not-ready"},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
            },
            {"metadata": {"name": "pending"}, "status": {"phase": "Pending"}},
            {"metadata": {"name": "hook-done"}, "status": {"phase": "Succeeded"}},
            {"metadata": {"name": "hook-failed-attempt"}, "status": {"phase": "Failed"}},
            {
                "metadata": {"name": "task", "labels": {"kubernetes_pod_operator": "True"}},
                "status": {"phase": "Pending"},
            },
            {"metadata": {"name": "labelled", "labels": {"app": "x"}}, "status": {"phase": "Pending"}},
        ],
    }
    (tmp_path / "main.go").write_text(GO_TEMPLATE_RUNNER)
    proc = subprocess.run(
        ["go", "run", "main.go", template],
        cwd=tmp_path,
        input=json.dumps(pods),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GO111MODULE": "off", "GOFLAGS": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["not-ready", "pending", "labelled"]
