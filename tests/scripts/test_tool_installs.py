"""The other "get X when missing" branches: the official chart (scripts/chart-deps: copied from
AIRFLOW_CHART_ARCHIVE, else downloaded by `helm dependency build`) and the pinned Go tools
(scripts/install-go-tool: `go install` unless ./bin has that version). STAND-IN helm and go
(argument recorders) take the download and build branches; the real ones are taken by every
`make deps` / `make tools` on a fresh clone (`make fresh-machine-check`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

from tests.support import paths

CHART_DEPS = str(paths.SCRIPTS_DIR / "chart-deps")
INSTALL_GO_TOOL = str(paths.SCRIPTS_DIR / "install-go-tool")


def chart_archive(path: Path, version: str = "1.20.0") -> Path:
    data = f"apiVersion: v2\nname: airflow\nversion: {version}\n".encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("airflow/Chart.yaml")
        info.size = len(data)
        tar.addfile(info, BytesIO(data))
    return path


def recorder(path: Path, body: str = "") -> Path:
    """A STAND-IN program that appends its arguments to <path>.calls, then runs body."""
    path.write_text(f'#!/bin/sh\necho "$*" >>"{path}.calls"\n{body}\n')
    path.chmod(0o755)
    return path


def calls(program: Path) -> list[str]:
    log = Path(f"{program}.calls")
    return log.read_text().splitlines() if log.exists() else []


def chart_copy(tmp_path: Path) -> Path:
    chart = tmp_path / "chart"
    chart.mkdir()
    shutil.copy(paths.CHART_DIR / "Chart.yaml", chart / "Chart.yaml")
    return chart


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("AIRFLOW_CHART_ARCHIVE", "HELM")}
    return subprocess.run(argv, env={**clean, **env}, capture_output=True, text=True, timeout=60, check=False)


def test_chart_downloaded_when_missing(tmp_path):
    chart = chart_copy(tmp_path)
    helm = recorder(tmp_path / "helm", 'case "$1" in dependency) mkdir -p "$3/charts" && '
                    f'cp {chart_archive(tmp_path / "dl.tgz")} "$3/charts/airflow-1.20.0.tgz";; esac')
    proc = run([CHART_DEPS, str(chart)], HELM=str(helm))
    assert proc.returncode == 0, proc.stderr
    assert calls(helm) == ["repo add apache-airflow https://airflow.apache.org --force-update",
                           f"dependency build {chart}"]
    assert (chart / "charts" / "airflow-1.20.0.tgz").is_file()
    assert "downloaded into" in proc.stdout + proc.stderr
    # second run: the pinned archive is there, nothing is downloaded
    assert run([CHART_DEPS, str(chart)], HELM=str(helm)).returncode == 0
    assert len(calls(helm)) == 2


def test_chart_download_failure_says_how(tmp_path):
    chart = chart_copy(tmp_path)
    helm = recorder(tmp_path / "helm", "echo 'Error: no route to host' >&2; exit 1")
    proc = run([CHART_DEPS, str(chart)], HELM=str(helm))
    assert proc.returncode == 1
    assert "deps: could not download the official Airflow chart 1.20.0 (Error: no route to host): set " \
           "AIRFLOW_CHART_ARCHIVE=/path/to/airflow-1.20.0.tgz" in proc.stderr


def test_chart_from_archive_and_a_wrong_one_replaced(tmp_path):
    chart = chart_copy(tmp_path)
    (chart / "charts").mkdir()
    chart_archive(chart / "charts" / "airflow-1.20.0.tgz", version="1.19.0")  # not the pinned version
    helm = recorder(tmp_path / "helm", "exit 1")
    proc = run([CHART_DEPS, str(chart)], HELM=str(helm), AIRFLOW_CHART_ARCHIVE=str(chart_archive(tmp_path / "a.tgz")))
    assert proc.returncode == 0, proc.stderr
    assert "is not the official chart airflow 1.20.0; removing it" in proc.stderr
    assert calls(helm) == [], "the archive is used, nothing downloaded"
    with tarfile.open(chart / "charts" / "airflow-1.20.0.tgz") as tar:
        assert b"version: 1.20.0" in tar.extractfile("airflow/Chart.yaml").read()


GO_STANDIN = 'case "$1" in install) mkdir -p "$GOBIN" && printf "#!/bin/sh\\necho built\\n" >"$GOBIN/tool" ' \
             '&& chmod +x "$GOBIN/tool";; esac'


def test_go_tool_built_when_missing_then_kept(tmp_path):
    standin = tmp_path / "standin"
    standin.mkdir()
    go = recorder(standin / "go", GO_STANDIN)
    bindir = tmp_path / "bin"
    env = {"PATH": f"{standin}:{os.environ['PATH']}", "GO_LDFLAGS": "-s -w"}
    proc = run([INSTALL_GO_TOOL, "example.com/x/cmd/tool", "example.com/x", "v1.2.3", str(bindir)], **env)
    assert proc.returncode == 0, proc.stderr
    assert calls(go) == ["install -trimpath -ldflags -s -w example.com/x/cmd/tool@v1.2.3"]
    assert subprocess.run([bindir / "tool"], capture_output=True, text=True).stdout == "built\n"
    assert (bindir / ".stamps" / "tool").read_text() == "example.com/x v1.2.3 -s -w\n"
    assert run([INSTALL_GO_TOOL, "example.com/x/cmd/tool", "example.com/x", "v1.2.3", str(bindir)], **env).returncode == 0
    assert len(calls(go)) == 1, "the same version with the same flags is not rebuilt"
    run([INSTALL_GO_TOOL, "example.com/x/cmd/tool", "example.com/x", "v1.2.4", str(bindir)], **env)
    assert calls(go)[-1].endswith("tool@v1.2.4"), "another pinned version is rebuilt"


def test_go_missing_names_what_to_do(tmp_path):
    empty = tmp_path / "path"
    empty.mkdir()
    for tool in ("bash", "cat", "basename", "mkdir"):
        os.symlink(shutil.which(tool), empty / tool)
    proc = run([shutil.which("bash"), INSTALL_GO_TOOL, "helm.sh/helm/v3/cmd/helm", "helm.sh/helm/v3", "v3.20.2",
                str(tmp_path / "bin")], PATH=str(empty))
    assert proc.returncode == 1
    assert proc.stderr.startswith("tools: Go is required to build helm v3.20.2 into")
    assert "Install Go (https://go.dev/dl/)" in proc.stderr


def readme_tool_copy(tmp_path: Path) -> Path:
    """tools/readme/readme with its package files and a chart of its own, in tmp_path."""
    tool = tmp_path / "tools" / "readme"
    tool.mkdir(parents=True)
    for name in ("readme", "package.json", "package-lock.json"):
        shutil.copy2(paths.REPO / "tools" / "readme" / name, tool / name)
    chart = tmp_path / "charts" / "airflow-mlops"
    chart.mkdir(parents=True)
    (chart / "values.yaml").write_text("## @param x a value\nx: 1\n")
    (chart / "README.md").write_text("# chart\n")
    return tool


# STAND-IN npm: `npm ci` lays out node_modules with a readme-generator that leaves the README as it is
NPM_STANDIN = ('case "$1" in ci) mkdir -p node_modules/.bin && echo "{}" >node_modules/.package-lock.json '
               '&& printf "#!/bin/sh\\nexit 0\\n" >node_modules/.bin/readme-generator '
               '&& chmod +x node_modules/.bin/readme-generator;; esac')


def test_readme_generator_installed_by_npm_ci_when_missing(tmp_path):
    tool = readme_tool_copy(tmp_path)
    standin = tmp_path / "standin"
    standin.mkdir()
    npm = recorder(standin / "npm", NPM_STANDIN)
    env = {"PATH": f"{standin}:{os.environ['PATH']}"}
    proc = run([str(tool / "readme"), "check"], **env)
    assert proc.returncode == 0, proc.stderr
    assert calls(npm) == ["ci --no-audit --no-fund --loglevel=error"]
    assert "docs: npm ci in tools/readme" in proc.stderr
    assert run([str(tool / "readme"), "check"], **env).returncode == 0
    assert len(calls(npm)) == 1, "node_modules up to date: no second npm ci"


def test_readme_without_npm_names_what_to_install(tmp_path):
    tool = readme_tool_copy(tmp_path)
    empty = tmp_path / "path"
    empty.mkdir()
    for name in ("bash", "dirname"):
        os.symlink(shutil.which(name), empty / name)
    proc = run([shutil.which("bash"), str(tool / "readme"), "check"], PATH=str(empty))
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("docs: npm not found: `make system-packages` (root) installs Debian's npm, "
                                   "or install Node.js 18+ with npm")
