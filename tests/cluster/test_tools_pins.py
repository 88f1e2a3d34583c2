"""The control-plane tools are pinned once: the Makefile versions and the tools modules agree.

Needs no cluster and no Go: it reads the Makefile and tools/control-plane/*/go.mod (the binaries
of the control plane whose kwok nodes run no containers).
"""

from __future__ import annotations

import re

import pytest

from tests.support.paths import REPO

TOOLS = REPO / "tools" / "control-plane"


def makefile_var(name: str) -> str:
    match = re.search(rf"^{name}\s*:=\s*(\S+)\s*$", (REPO / "Makefile").read_text(), re.M)
    assert match, f"{name} is not set in the Makefile"
    return match.group(1)


def gomod(component: str) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """(require, replace) of tools/control-plane/<component>/go.mod: module -> version,
    module -> (target module, target version); single lines and blocks alike."""
    text = re.sub(r"//.*", "", (TOOLS / component / "go.mod").read_text())
    require: dict[str, str] = {}
    replace: dict[str, tuple[str, str]] = {}
    block = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if block and line == ")":
            block = None
            continue
        words = line.split()
        if words[0] in ("require", "replace") and words[-1] == "(":
            block = words[0]
            continue
        kind = block
        if words[0] in ("require", "replace"):
            kind, words = words[0], words[1:]
        if kind == "require":
            require[words[0]] = words[1]
        elif kind == "replace":
            left, right = " ".join(words).split("=>")
            replace[left.split()[0]] = tuple(right.split())  # type: ignore[assignment]
    return require, replace


def test_kubernetes_module_pins_the_makefile_version():
    version = makefile_var("KUBERNETES_VERSION")
    require, replace = gomod("kubernetes")
    assert require["k8s.io/kubernetes"] == version
    # every staging module is replaced by its published release of the same minor
    staging = "v0." + version.removeprefix("v1.")
    assert replace, "no replace directives: go build would look for ./staging"
    for module, (target, target_version) in replace.items():
        assert module.startswith("k8s.io/"), module
        assert target == module and target_version == staging, (module, target, target_version)


def test_etcd_module_pins_the_makefile_version():
    version = makefile_var("ETCD_VERSION")
    require, replace = gomod("etcd")
    assert require["go.etcd.io/etcd/server/v3"] == version
    # the server's sibling modules at the same release (its go.mod points them at ../)
    for module in ("go.etcd.io/etcd/api/v3", "go.etcd.io/etcd/client/pkg/v3", "go.etcd.io/etcd/client/v3",
                   "go.etcd.io/etcd/pkg/v3"):
        assert replace[module] == (module, version), module


def test_coredns_module_pins_the_makefile_version():
    version = makefile_var("COREDNS_VERSION")
    require, _ = gomod("coredns")
    assert require["github.com/coredns/coredns"] == version
    assert "scripts/cluster-tools coredns $(COREDNS_VERSION)" in (REPO / "Makefile").read_text()


def test_registry_module_pins_the_makefile_version():
    """The registry of the test tiers and registry-htpasswd: one pin, the version stamped into
    `registry --version`, and the bcrypt of the htpasswd lines the one the registry links."""
    version = makefile_var("REGISTRY_VERSION")
    require, replace = gomod("registry")
    assert require["github.com/distribution/distribution/v3"] == version
    assert not replace
    assert "golang.org/x/crypto" in require, "registry-htpasswd hashes with the registry's x/crypto"
    script = (REPO / "scripts" / "cluster-tools").read_text()
    assert "distribution/v3/version.version=$version" in script
    assert "$(BIN)/registry" in (REPO / "Makefile").read_text()


@pytest.mark.parametrize("component", ["kubernetes", "etcd", "coredns", "registry"])
def test_tools_go_imports_the_built_commands(component):
    text = (TOOLS / component / "tools.go").read_text()
    assert "//go:build tools" in text
    makefile = (REPO / "scripts" / "cluster-tools").read_text()
    for pkg in re.findall(r'_ "([^"]+)"', text):
        assert pkg in makefile, f"{pkg} is imported by tools.go but not built by scripts/cluster-tools"


def test_kwok_version_is_pinned_and_used():
    version = makefile_var("KWOK_VERSION")
    assert re.fullmatch(r"v\d+\.\d+\.\d+", version)
    assert "sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok $(KWOK_VERSION)" in (REPO / "Makefile").read_text()


def test_kubernetes_version_is_stamped_from_the_pin():
    script = (REPO / "scripts" / "cluster-tools").read_text()
    for var in ("gitVersion=$version", "gitMajor=$major", "gitMinor=$minor"):
        assert f"k8s.io/component-base/version.{var}" in script


def test_kube_router_module_pins_the_makefile_version():
    version = makefile_var("KUBE_ROUTER_VERSION")
    require, replace = gomod("kube-router")
    assert require["github.com/cloudnativelabs/kube-router/v2"] == version
    assert not replace
    makefile = (REPO / "Makefile").read_text()
    assert "scripts/cluster-tools kube-router $(KUBE_ROUTER_VERSION)" in makefile
    assert "$(BIN)/kube-router" in makefile.split("\ncluster-tools:")[1].split("\n\n")[0]
