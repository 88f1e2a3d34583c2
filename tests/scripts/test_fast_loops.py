"""The fast loops build nothing they do not need, and `make template` prints only YAML.

- `make test-dags`, `make test-chart` and `make template` depend on helm and .venv only: nothing
  of `make tools` (kind, kube-score, the control plane) is among their prerequisites.
- scripts/pinned-helm: a helm of the pinned version on PATH is used as it is (a stand-in `helm`
  that reports v3.20.2 records the call); one of another version is not, and without Go the
  error says what to do; with Go (a stand-in `go` that records the call and writes a stand-in
  helm into GOBIN) ./bin/helm is built once and reused.
- On a fresh copy of the repository (no ./bin, no official chart in charts/), the stdout of
  `make template` is the YAML helm printed and nothing else: every progress message of deps and
  tools goes to stderr (scripts/chart-deps, scripts/install-go-tool, scripts/cluster-tools).
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

HELM_VERSION = re.search(r"^HELM_VERSION := (\S+)$", (paths.REPO / "Makefile").read_text(), re.M).group(1)
BUILD_TARGETS = {"tools", "cluster-tools", "kind-up"}
BUILD_FILES = ("kind", "kube-score", "kube-apiserver", "etcd", "kwok")

STANDIN_HELM = """#!/bin/sh
# STAND-IN helm (tests/scripts/test_fast_loops.py): reports a version, records other calls and
# prints one YAML document for `template`.
if [ "$1" = version ]; then echo "{version}"; exit 0; fi
echo "$0 $*" >> "{record}"
if [ "$1" = template ]; then printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: standin\\n'; fi
"""

STANDIN_GO = """#!/bin/sh
# STAND-IN go (tests/scripts/test_fast_loops.py): records the call; `go install` writes a
# stand-in helm reporting the pinned version into GOBIN, as the real build would write helm.
echo "go $* GOBIN=$GOBIN" >> "{record}"
if [ "$1" = install ]; then
  mkdir -p "$GOBIN"
  cat > "$GOBIN/helm" <<'HELM'
{helm}HELM
  chmod +x "$GOBIN/helm"
  echo "go: downloading helm.sh/helm/v3 {version}" >&2
fi
"""


def _prerequisites(target: str) -> set[str]:
    """Every target `make <target>` would consider, transitively (make's database, nothing run)."""
    db = subprocess.run(
        ["make", "-pqn", "-f", "Makefile", "help"], cwd=paths.REPO, capture_output=True, text=True
    ).stdout
    rules: dict[str, list[str]] = {}
    for line in db.splitlines():
        m = re.match(r"^([^\s#:=][^:=]*?):(?!=)\s*(.*)$", line)
        if m and not line.startswith(("\t", "#")):
            for name in m.group(1).split():
                rules.setdefault(name, []).extend(m.group(2).split("|")[0].split())
    seen: set[str] = set()
    todo = [target]
    while todo:
        t = todo.pop()
        if t not in seen:
            seen.add(t)
            todo.extend(rules.get(t, []))
    return seen - {target}


@pytest.mark.parametrize("target", ["test-dags", "test-chart", "template"])
def test_fast_loops_need_nothing_of_make_tools(target: str) -> None:
    prereqs = _prerequisites(target)
    assert "deps" in prereqs, prereqs
    built = {p for p in prereqs if p in BUILD_TARGETS or Path(p).name in BUILD_FILES}
    assert built == set(), f"make {target} would build {sorted(built)}"
    dry = subprocess.run(
        ["make", "-n", target, "ENV=values/kind.yaml"], cwd=paths.REPO, capture_output=True, text=True
    ).stdout
    for word in ("cluster-tools", "sigs.k8s.io/kind", "kube-score", "kwok"):
        assert word not in dry, f"make -n {target} runs {word}:\n{dry}"


def test_make_test_dags_checks_the_repository_unless_told_otherwise() -> None:
    """`make test-dags` alone runs every DAG test (MLOPS_DAG_VALUES empty), not only the folder
    rules against the images targets' default values file; VALUES= still reaches it, and
    `make images`/`make push` keep their default values/kind.yaml."""
    env = {k: v for k, v in os.environ.items() if k not in ("VALUES", "DAGS")}

    def dry(*args: str) -> str:
        return subprocess.run(["make", "-n", *args], cwd=paths.REPO, capture_output=True, text=True, env=env).stdout

    assert 'MLOPS_DAG_VALUES=""' in dry("test-dags"), dry("test-dags")
    assert 'MLOPS_DAG_VALUES="values/production.example.yaml"' in dry("test-dags", "VALUES=values/production.example.yaml")
    assert "--values values/kind.yaml" in dry("images")
    assert "--values a.yaml --values b.yaml" in dry("push", "VALUES=a.yaml b.yaml")


def test_the_prerequisite_reader_sees_a_build() -> None:
    """It can fail: `make test-cluster` does depend on tools (the control plane)."""
    assert "tools" in _prerequisites("test-cluster")


@pytest.fixture
def fresh(tmp_path: Path) -> dict:
    """A fresh copy of the repository's build files (no ./bin, no official chart in charts/),
    a directory for stand-ins and a PATH with no helm and no Go but the stand-ins."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy2(paths.REPO / "Makefile", repo / "Makefile")
    shutil.copytree(paths.SCRIPTS_DIR, repo / "scripts")
    shutil.copytree(paths.VALUES_DIR, repo / "values")
    shutil.copytree(paths.CHART_DIR, repo / paths.CHART_DIR.relative_to(paths.REPO), ignore=shutil.ignore_patterns("charts"))
    archive = os.environ.get("AIRFLOW_CHART_ARCHIVE") or str(paths.SUBCHART_DIR / "airflow-1.20.0.tgz")
    assert Path(archive).is_file(), archive
    standins = tmp_path / "standins"
    standins.mkdir()
    keep = [
        d for d in os.environ["PATH"].split(os.pathsep)
        if d and not any(os.access(Path(d) / tool, os.X_OK) for tool in ("helm", "go"))
    ]
    env = {**os.environ, "PATH": os.pathsep.join([str(standins), *keep]), "AIRFLOW_CHART_ARCHIVE": archive}
    env.pop("HELM", None)
    return {"repo": repo, "standins": standins, "env": env, "record": tmp_path / "calls.log"}


def _make_template(fresh: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "template", "ENV=values/production.example.yaml"],
        cwd=fresh["repo"], env=fresh["env"], capture_output=True, text=True, timeout=300,
    )


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _calls(fresh: dict) -> list[str]:
    return fresh["record"].read_text().splitlines() if fresh["record"].exists() else []


def test_a_pinned_helm_on_path_is_used_and_stdout_is_pure_yaml(fresh: dict) -> None:
    _write(fresh["standins"] / "helm", STANDIN_HELM.format(version=HELM_VERSION, record=fresh["record"]))
    proc = _make_template(fresh)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: standin\n", (
        f"make template's stdout is not only helm's YAML:\n{proc.stdout}"
    )
    assert list(yaml.safe_load_all(proc.stdout)) == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "standin"}}]
    assert "deps: official chart airflow 1.20.0 copied" in proc.stderr, proc.stderr
    (call,) = _calls(fresh)
    assert call == (
        f"{fresh['standins']}/helm template mlops charts/airflow-mlops --namespace mlops "
        "--values values/production.example.yaml"
    )
    assert not (fresh["repo"] / "bin").exists(), "nothing was built"


def test_a_helm_of_another_version_is_not_used_and_without_go_the_error_says_so(fresh: dict) -> None:
    _write(fresh["standins"] / "helm", STANDIN_HELM.format(version="v3.19.0", record=fresh["record"]))
    proc = _make_template(fresh)
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert f"{fresh['standins']}/helm is helm v3.19.0, not the pinned {HELM_VERSION}; not used" in proc.stderr
    assert f"Go is required to build helm {HELM_VERSION}" in proc.stderr, proc.stderr
    assert _calls(fresh) == [], "the other helm rendered nothing"


def test_without_a_pinned_helm_it_is_built_once_with_go(fresh: dict) -> None:
    helm = STANDIN_HELM.format(version=HELM_VERSION, record=fresh["record"])
    _write(fresh["standins"] / "go", STANDIN_GO.format(record=fresh["record"], helm=helm, version=HELM_VERSION))
    for attempt in (1, 2):
        proc = _make_template(fresh)
        assert proc.returncode == 0, proc.stderr
        assert list(yaml.safe_load_all(proc.stdout)) == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "standin"}}], (
            f"run {attempt}: stdout is not only YAML:\n{proc.stdout}"
        )
    bindir = fresh["repo"] / "bin"
    calls = _calls(fresh)
    builds = [c for c in calls if c.startswith("go install")]
    assert len(builds) == 1, calls
    assert f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}" in builds[0] and f"GOBIN={bindir}" in builds[0]
    assert f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}" in builds[0]
    renders = [c for c in calls if " template " in c]
    assert renders == [f"{bindir}/helm template mlops charts/airflow-mlops --namespace mlops --values values/production.example.yaml"] * 2


def test_cluster_tools_prints_nothing_on_stdout(fresh: dict, tmp_path: Path) -> None:
    """scripts/cluster-tools (part of `make tools`): its progress goes to stderr."""
    _write(fresh["standins"] / "go", """#!/bin/sh
# STAND-IN go: `go version -m` knows no binary; `go build -o DIR/ ...` writes one file there.
[ "$1" = version ] && exit 1
while [ $# -gt 0 ]; do [ "$1" = -o ] && { touch "$2/server"; chmod +x "$2/server"; }; shift; done
echo "go: downloading go.etcd.io/etcd" >&2
""")
    shutil.copytree(paths.REPO / "tools" / "control-plane" / "etcd", fresh["repo"] / "tools" / "control-plane" / "etcd")
    version = re.search(r"^ETCD_VERSION\s*:= (\S+)$", (paths.REPO / "Makefile").read_text(), re.M).group(1)
    proc = subprocess.run(
        [str(fresh["repo"] / "scripts" / "cluster-tools"), "etcd", version, str(tmp_path / "bin")],
        env=fresh["env"], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert f"tools: building etcd {version}" in proc.stderr and "tools: built etcd" in proc.stderr
    assert (tmp_path / "bin" / "etcd").exists()
