"""scripts/cluster/registry.py: the real CNCF distribution registry (bin/registry) with htpasswd
auth and TLS from a CA made here, on 127.0.0.1. It stands in for Nexus, which cannot exist here.

No Docker: an image is pushed and pulled with the registry's HTTP API (blobs, then a manifest),
as any client does. The Docker push flow is tested by the container tier
(tests/images/docker/test_push.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support import paths
from tests.support import registry as reg_mod
from tests.support.helm import helm_template

BIN = paths.REPO / "bin"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> tuple[Path, Path]:
    for exe in ("registry", "registry-htpasswd"):
        assert os.access(BIN / exe, os.X_OK), f"bin/{exe} is missing: run `make cluster-tools`"
    return reg_mod.make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def reg(ca, tmp_path_factory):
    state = tmp_path_factory.mktemp("registry")
    with reg_mod.running(state, *ca, reg_mod.free_port()) as r:
        yield r
    assert reg_mod.load(state) is None


def push_image(reg: reg_mod.Registry, repo: str, tag: str, payload: bytes) -> str:
    """Push a one-layer OCI image through the API (monolithic blob uploads); its manifest digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    descriptors = []
    for media, blob in (("application/vnd.oci.image.config.v1+json", config),
                        ("application/vnd.oci.image.layer.v1.tar", payload)):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        status, headers, _ = reg.get(f"/v2/{repo}/blobs/uploads/", method="POST")
        assert status == 202, status
        location = headers["Location"]
        location = location if location.startswith("/") else "/" + location.split("/", 3)[3]
        sep = "&" if "?" in location else "?"
        req = urllib.request.Request(reg.url + f"{location}{sep}digest={digest}", data=blob, method="PUT",
                                     headers={"Authorization": reg.auth(), "Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, context=reg_mod.ssl_context(reg.ca_cert)) as resp:
            assert resp.status == 201
        descriptors.append({"mediaType": media, "digest": digest, "size": len(blob)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "config": descriptors[0],
                           "layers": descriptors[1:]}).encode()
    req = urllib.request.Request(reg.url + f"/v2/{repo}/manifests/{tag}", data=manifest, method="PUT",
                                 headers={"Authorization": reg.auth(), "Content-Type": MANIFEST})
    with urllib.request.urlopen(req, context=reg_mod.ssl_context(reg.ca_cert)) as resp:
        assert resp.status == 201
        return resp.headers["Docker-Content-Digest"]


def test_v2_needs_the_password_and_verified_tls(reg, ca, tmp_path) -> None:
    status, headers, _ = reg.get("/v2/", auth=False)
    assert status == 401 and headers["Www-Authenticate"] == 'Basic realm="mlops-registry"'
    wrong = reg_mod.Registry(reg.host, reg.username, reg.password + "x", reg.ca_cert, reg.dir, reg.pid)
    assert wrong.get("/v2/")[0] == 401
    assert reg.get("/v2/")[0] == 200
    # the serving certificate is the CA's, for 127.0.0.1: another CA refuses it
    other_ca, _ = reg_mod.make_ca(tmp_path / "other", name="another-ca")
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen(reg.url + "/v2/", context=reg_mod.ssl_context(other_ca), timeout=5)
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    # no plain HTTP: Go's TLS server answers 400 to an HTTP request
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://{reg.host}/v2/", timeout=5)
    assert err.value.code == 400 and b"HTTPS server" in err.value.read()


def test_state_files_and_secrets(reg) -> None:
    creds = reg.dir / "credentials.json"
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    assert oct((reg.dir / "htpasswd").stat().st_mode & 0o777) == "0o600"
    user, _, hashed = (reg.dir / "htpasswd").read_text().strip().partition(":")
    assert user == reg.username and hashed.startswith("$2a$10$"), "bcrypt at its default cost"
    assert len(reg.password) >= 24
    for f in ("config.yml", "registry.log", "state.json", "htpasswd"):
        assert reg.password not in (reg.dir / f).read_text(), f"{f} holds the password"
    config = yaml.safe_load((reg.dir / "config.yml").read_text())
    assert config["http"]["addr"] == reg.host and reg.host.startswith("127.0.0.1:")
    assert config["auth"]["htpasswd"]["path"] == str(reg.dir / "htpasswd")


def test_push_and_pull_through_the_api(reg) -> None:
    digest = push_image(reg, "mlops/probe", "1", b"layer bytes")
    accept = {"Accept": MANIFEST}
    status, headers, body = reg.get("/v2/mlops/probe/manifests/1", headers=accept)
    assert status == 200 and headers["Docker-Content-Digest"] == digest
    assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
    assert reg.get("/v2/mlops/probe/manifests/1", auth=False, headers=accept)[0] == 401
    blob = json.loads(body)["layers"][0]["digest"]
    assert reg.get(f"/v2/mlops/probe/blobs/{blob}")[2] == b"layer bytes"
    assert reg.get(f"/v2/mlops/probe/blobs/{blob}", auth=False)[0] == 401
    assert json.loads(reg.get("/v2/mlops/probe/tags/list")[2]) == {"name": "mlops/probe", "tags": ["1"]}


def test_dockerconfigjson_and_chart_values(reg) -> None:
    """The chart renders the pull secret for exactly these credentials and names the images here."""
    cfg = json.loads(reg.dockerconfigjson())
    entry = cfg["auths"][reg.host]
    assert base64.b64decode(entry["auth"]).decode() == f"{reg.username}:{reg.password}"
    hosts = tomllib.loads(reg.containerd_hosts_toml())
    assert hosts["server"] == reg.url
    assert hosts["host"][reg.url] == {"capabilities": ["pull", "resolve"], "ca": str(reg.ca_cert)}
    overlay = reg_mod.values_file(reg, reg.dir / "values.yaml")
    assert oct(overlay.stat().st_mode & 0o777) == "0o600"
    objects = [d for d in yaml.safe_load_all(helm_template(
        values_files=[reg_mod.KIND_VALUES, overlay], release="mlops", namespace="mlops",
        extra_args=["--set", "airflow.dags.gitSync.enabled=false"])) if d]
    secrets = [o for o in objects if o["kind"] == "Secret" and o.get("type") == "kubernetes.io/dockerconfigjson"]
    assert {(s["metadata"]["name"], s["metadata"]["namespace"]) for s in secrets} == {
        ("mlops-registry", "mlops"), ("mlops-registry", "mlops-serving")}
    for s in secrets:
        assert json.loads(base64.b64decode(s["data"][".dockerconfigjson"])) == {
            "auths": {reg.host: {"username": reg.username, "password": reg.password, "auth": entry["auth"]}}}
    refs = reg_mod.images_refs().refs_from_render(objects)  # what make images / make push use
    assert refs == {n: f"{reg.host}/mlops/{n}:dev" for n in ("airflow", "mlflow", "trainer")}
    for o in objects:
        spec = (o.get("spec") or {}).get("template", {}).get("spec")
        if not spec:
            continue
        ours = [c["image"] for c in spec.get("containers", []) + spec.get("initContainers", [])
                if c["image"].startswith(reg.host)]
        if ours:
            assert [p["name"] for p in spec.get("imagePullSecrets", [])] == ["mlops-registry"], o["metadata"]["name"]


def test_start_again_reuses_restart_keeps_data_and_password(ca, tmp_path) -> None:
    port = reg_mod.free_port()
    first = reg_mod.start(tmp_path, *ca, port)
    try:
        assert reg_mod.start(tmp_path, *ca, port).pid == first.pid, "a running registry is reused"
        digest = push_image(first, "mlops/kept", "v1", b"kept")
        assert reg_mod.stop(tmp_path) is True
        assert not Path(f"/proc/{first.pid}").exists() or "Z" in Path(f"/proc/{first.pid}/stat").read_text().split()[2]
        assert reg_mod.stop(tmp_path) is False
        second = reg_mod.start(tmp_path, *ca, port)
        assert second.pid != first.pid and second.password == first.password
        assert second.get("/v2/mlops/kept/manifests/v1", headers={"Accept": MANIFEST})[1]["Docker-Content-Digest"] == digest
    finally:
        reg_mod.stop(tmp_path)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the port is free after stop"


def test_stale_pid_file_is_not_trusted(ca, tmp_path) -> None:
    """A pid file naming another process (a reused pid) is never killed."""
    (tmp_path / "registry.pid").write_text(f"{os.getpid()}\n")
    assert reg_mod.load(tmp_path) is None
    assert reg_mod.stop(tmp_path) is False
    assert not (tmp_path / "registry.pid").exists()


def test_port_in_use_is_refused_with_its_holder(ca, tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(reg_mod.RegistryError, match=rf"127.0.0.1:{port} is already in use by .*pid={os.getpid()},"):
            reg_mod.start(tmp_path, *ca, port)


def test_missing_binary_and_bad_input(ca, tmp_path) -> None:
    with pytest.raises(reg_mod.RegistryError, match="make cluster-tools"):
        reg_mod.start(tmp_path / "a", *ca, reg_mod.free_port(), bin_dir=tmp_path / "empty")
    with pytest.raises(reg_mod.RegistryError, match="CA file .*nope.crt does not exist"):
        reg_mod.start(tmp_path / "b", tmp_path / "nope.crt", ca[1], reg_mod.free_port())
    with pytest.raises(reg_mod.RegistryError, match="port 80 is not between 1024 and 65535"):
        reg_mod.start(tmp_path / "c", *ca, 80)


def test_a_registry_that_exits_at_start_reports_its_log(ca, tmp_path) -> None:
    """The registry refuses a key that does not match its certificate: the error carries its log."""
    state = tmp_path / "state"
    port = reg_mod.free_port()
    reg_mod.start(state, *ca, port)
    reg_mod.stop(state)
    other_key = tmp_path / "other.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", str(other_key)], check=True, capture_output=True)
    (state / "tls" / "registry.key").write_bytes(other_key.read_bytes())
    with pytest.raises(reg_mod.RegistryError, match=r"(?s)exited with status \d+ at start.*private key does not match"):
        reg_mod.start(state, *ca, port)
    assert reg_mod.load(state) is None


def test_command_line(ca, tmp_path) -> None:
    """python3 -m scripts.cluster.registry: start prints where and who (never the password), a CA
    of its own without --ca-cert; status; dockerconfigjson; stop."""
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "scripts.cluster.registry", *args], cwd=paths.REPO,
                              capture_output=True, text=True, timeout=60, check=False)

    port = str(reg_mod.free_port())
    out = cli("start", "--dir", str(tmp_path), "--port", port)
    assert out.returncode == 0, out.stderr
    try:
        info = json.loads(out.stdout)
        password = json.loads((tmp_path / "credentials.json").read_text())["password"]
        assert password not in out.stdout + out.stderr
        assert info["host"] == f"127.0.0.1:{port}" and info["username"] == "mlops-push"
        assert Path(info["ca_cert"]).read_bytes() == (tmp_path / "ca" / "ca.crt").read_bytes()
        assert cli("status", "--dir", str(tmp_path)).returncode == 0
        auths = json.loads(cli("dockerconfigjson", "--dir", str(tmp_path)).stdout)["auths"]
        assert auths[info["host"]]["password"] == password
        bad = cli("start", "--dir", str(tmp_path / "x"), "--port", port, "--ca-cert", str(ca[0]))
        assert bad.returncode == 2 and "--ca-cert and --ca-key go together" in bad.stderr
    finally:
        stopped = cli("stop", "--dir", str(tmp_path))
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    assert cli("status", "--dir", str(tmp_path)).returncode == 1


def test_data_dir_outlives_the_state_directory(ca, tmp_path) -> None:
    """data_dir= keeps what was pushed for a registry of another state directory (next session)."""
    data = tmp_path / "kept-data"
    with reg_mod.running(tmp_path / "session-1", *ca, reg_mod.free_port(), data_dir=data) as first:
        digest = push_image(first, "mlops/kept", "v1", b"kept across sessions")
    assert not (tmp_path / "session-1" / "data").exists()
    with reg_mod.running(tmp_path / "session-2", *ca, reg_mod.free_port(), data_dir=data) as second:
        status, headers, _ = second.get("/v2/mlops/kept/manifests/v1", headers={"Accept": MANIFEST})
        assert status == 200 and headers["Docker-Content-Digest"] == digest
