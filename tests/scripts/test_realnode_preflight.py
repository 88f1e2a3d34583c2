"""The real node's preflight (scripts/cluster/realnode.py): its Debian packages are installed
when missing through scripts/ensure-apt-packages, and what is still missing stops it with the
command to run. A stand-in ``apt-get`` first on PATH records the call (nothing is installed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from scripts.cluster import realnode

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the real node's preflight needs root")


def stand_in_apt(tmp_path: Path, creates: Path | None = None) -> tuple[Path, Path]:
    """A bin directory with an apt-get that records its arguments (and creates a file: the
    package's program, when given); returns (bin dir, record file)."""
    bindir, record = tmp_path / "apt-bin", tmp_path / "apt-calls"
    bindir.mkdir()
    script = bindir / "apt-get"
    make = f'mkdir -p "{creates.parent}" && printf "#!/bin/sh\\n" >"{creates}" && chmod +x "{creates}"' if creates else ":"
    script.write_text(f'#!/bin/sh\necho "$*" >>"{record}"\ncase " $* " in *" install "*) {make} ;; esac\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bindir, record


def installed(record: Path) -> list[set[str]]:
    """The package sets of the recorded `apt-get ... install ...` calls (options dropped)."""
    calls = []
    for line in record.read_text().splitlines():
        words = line.split()
        if "install" in words:
            calls.append({w for w in words[words.index("install") + 1:] if not w.startswith("-")})
    return calls


def layout(tmp_path: Path) -> realnode.Layout:
    return realnode.Layout(tmp_path / "cluster", 27999, tmp_path / "empty-bin")


def test_a_missing_package_is_installed_and_its_program_used(tmp_path, monkeypatch):
    plugin = tmp_path / "cni" / "bridge"
    bindir, record = stand_in_apt(tmp_path, creates=plugin)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(realnode, "PACKAGES", {str(plugin): "containernetworking-plugins"})
    with pytest.raises(realnode.NodeError) as e:
        realnode.preflight(layout(tmp_path))
    # the package was installed (by the stand-in) and found: preflight went on to the binaries
    assert installed(record) == [{"containernetworking-plugins"}]
    assert "kubelet kube-proxy coredns nodeimage kube-router missing in" in str(e.value)
    assert "make cluster-tools" in str(e.value)


def test_a_package_that_cannot_be_installed_names_it_and_the_way_out(tmp_path, monkeypatch):
    bindir, record = stand_in_apt(tmp_path)  # installs nothing
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(realnode, "PACKAGES", {str(tmp_path / "nowhere" / "bridge"): "containernetworking-plugins",
                                               "no-such-runtime-xyz": "containerd"})
    with pytest.raises(realnode.NodeError) as e:
        realnode.preflight(layout(tmp_path))
    # apt-get "succeeded" but installed nothing: the preflight checks again and stops
    assert installed(record) == [{"containernetworking-plugins", "containerd"}]
    msg = str(e.value)
    assert "containernetworking-plugins containerd are missing" in msg
    assert "apt-get install containernetworking-plugins containerd" in msg and "CLUSTER_REAL_NODE=0" in msg


def test_present_packages_call_no_apt_get(tmp_path, monkeypatch):
    bindir, record = stand_in_apt(tmp_path)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(realnode, "PACKAGES", {"sh": "dash"})
    with pytest.raises(realnode.NodeError, match="missing in"):
        realnode.preflight(layout(tmp_path))
    assert not record.exists()


def test_ipset_for_the_policy_controller_is_installed_when_missing(tmp_path, monkeypatch):
    """kube-router (the node's NetworkPolicy controller) needs Debian's ipset: one of the node's
    packages; missing, the preflight installs it and goes on with the program apt-get brought."""
    assert realnode.PACKAGES["ipset"] == "ipset"
    program = tmp_path / "sbin" / "ipset"  # stands for the absent command
    bindir, record = stand_in_apt(tmp_path, creates=program)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(realnode, "PACKAGES", {"sh": "dash", str(program): "ipset"})
    with pytest.raises(realnode.NodeError) as e:
        realnode.preflight(layout(tmp_path))
    assert installed(record) == [{"ipset"}]
    assert os.access(program, os.X_OK)
    assert "kube-router missing in" in str(e.value)  # past the packages: the binaries
