"""make kind-up / kind-down / kind-test: everything that runs without a Docker engine.

- every kind script passes `bash -n` and shellcheck;
- the targets fail fast with a clear message: for real when no Docker engine answers (this
  machine), and with a stand-in `docker` for "not installed", "too little memory" and "hangs";
- the manifests kind-up applies (git server, shared PersistentVolumes) validate strictly against
  the Kubernetes schemas and the restricted Pod Security Standard, and agree with the git-server
  image and with values/kind.yaml;
- the footprint script's quantities agree with the Kubernetes client's parser, and the rendered
  kind platform fits the Docker Desktop budget;
- the Secrets logic creates each Secret once and keeps it (with a stand-in kubectl).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.support import paths
from tests.support.helm import helm_template, parse_documents, render_chart
from tests.support.k8s import restricted_violations, validate_objects
from tests.values.overlays import with_overlays

KIND_DIR = paths.SCRIPTS_DIR / "kind"
KIND_UP = paths.SCRIPTS_DIR / "kind-up"
KIND_DOWN = paths.SCRIPTS_DIR / "kind-down"
SHELL_FILES = [
    KIND_UP,
    KIND_DOWN,
    *sorted(KIND_DIR.glob("*.sh")),
    paths.IMAGES_DIR / "git-server" / "entrypoint.sh",
]
GIT_SERVER_MANIFEST = KIND_DIR / "git-server.yaml"
KIND_VALUES = paths.VALUES_DIR / "kind.yaml"

sys.path.insert(0, str(KIND_DIR))
import footprint  # noqa: E402
import shared_volumes  # noqa: E402


def docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


# --- syntax --------------------------------------------------------------------------------


@pytest.mark.parametrize("script", SHELL_FILES, ids=lambda p: p.relative_to(paths.REPO).as_posix())
def test_bash_syntax(script: Path) -> None:
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(
    not shutil.which("shellcheck"), reason="shellcheck not installed (apt-get install shellcheck)"
)
def test_shellcheck_clean() -> None:
    proc = subprocess.run(
        ["shellcheck", "-x", *[str(s) for s in SHELL_FILES]], cwd=paths.REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_executables() -> None:
    for script in (KIND_UP, KIND_DOWN):
        assert os.access(script, os.X_OK), f"{script} must be executable"


def test_unknown_argument_prints_usage() -> None:
    proc = subprocess.run([str(KIND_UP), "--bogus"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


# --- fail fast ---------------------------------------------------------------------------------


@pytest.mark.skipif(docker_answers(), reason="a Docker engine answers here: `make kind-up` would really run")
@pytest.mark.parametrize("target", ["kind-up", "kind-test", "kind-down"])
def test_make_target_fails_fast_without_docker_engine(target: str) -> None:
    """For real: no Docker engine on this machine (docker CLI missing or daemon down)."""
    start = time.monotonic()
    proc = subprocess.run(["make", target], cwd=paths.REPO, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "ERROR in step preflight" in out, out
    assert ("does not answer" in out) or ("'docker' is not installed" in out), out
    assert "Docker" in out and ("Start Docker" in out or "Install Docker" in out), out
    # Nothing was built first: no venv, no tools, no cluster.
    assert "venv: building" not in out and "tools: building" not in out
    print(f"make {target}: failed in {took:.1f}s with:\n{out.strip()}")


def _tool_dir(tmp: Path, docker_script: str | None) -> Path:
    """A PATH directory with the basic tools kind-up's preflight uses, and a chosen `docker`."""
    bindir = tmp / "bin"
    bindir.mkdir()
    for tool in (
        "bash",
        "env",
        "dirname",
        "cat",
        "sed",
        "awk",
        "tail",
        "sleep",
        "grep",
        "kubectl",
        "mktemp",
        "rm",
    ):
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    if docker_script is not None:
        docker = bindir / "docker"
        docker.write_text("#!/usr/bin/env bash\n" + docker_script)
        docker.chmod(0o755)
    return bindir


def _preflight(tmp: Path, docker_script: str | None, **env: str) -> subprocess.CompletedProcess:
    bindir = _tool_dir(tmp, docker_script)
    return subprocess.run(
        [str(bindir / "bash"), str(KIND_UP), "--preflight"],
        env={"PATH": str(bindir), "HOME": str(tmp), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_preflight_docker_not_installed(tmp_path: Path) -> None:
    proc = _preflight(tmp_path, None)
    assert proc.returncode == 1
    assert "'docker' is not installed" in proc.stderr
    assert "https://docs.docker.com" in proc.stderr


def test_preflight_too_little_memory(tmp_path: Path) -> None:
    # stand-in docker: an engine with 4 GiB, the Docker Desktop default on some machines
    proc = _preflight(tmp_path, 'echo "4294967296 4 28.2.2"')
    assert proc.returncode == 1
    assert "Docker has 4096 MiB of memory" in proc.stderr
    assert "Settings > Resources > Memory" in proc.stderr


@pytest.mark.skipif(not shutil.which("kubectl"), reason="the preflight also requires kubectl")
def test_preflight_enough_memory_passes_and_warns_on_few_cpus(tmp_path: Path) -> None:
    proc = _preflight(tmp_path, 'echo "8589934592 2 28.2.2"')
    assert proc.returncode == 0, proc.stderr
    assert "Docker 28.2.2: 2 CPUs, 8192 MiB memory" in proc.stdout
    assert "warning: Docker has 2 CPUs" in proc.stdout


def test_preflight_engine_that_hangs_times_out(tmp_path: Path) -> None:
    start = time.monotonic()
    proc = _preflight(tmp_path, "sleep 30", MLOPS_KIND_DOCKER_TIMEOUT="2")
    assert time.monotonic() - start < 15
    assert proc.returncode == 1
    assert "no answer within 2s" in proc.stderr


# --- manifests kind-up applies --------------------------------------------------------------------


def git_server_objects() -> list[dict]:
    text = GIT_SERVER_MANIFEST.read_text().replace("@KEYS_CHECKSUM@", "0123456789abcdef")
    return [{**o, "__source__": "scripts/kind/git-server.yaml"} for o in yaml.safe_load_all(text) if o]


def test_git_server_manifests_validate_and_are_restricted() -> None:
    objects = git_server_objects()
    assert sorted(o["kind"] for o in objects) == ["Deployment", "PersistentVolumeClaim", "Service"]
    validate_objects(objects, versions=paths.KUBE_VERSIONS)
    (deploy,) = [o for o in objects if o["kind"] == "Deployment"]
    assert restricted_violations(deploy["spec"]["template"]["spec"], "git-server") == []
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "@" not in yaml.safe_dump(deploy)


def test_git_server_matches_the_contract_and_the_image() -> None:
    objects = {o["kind"]: o for o in git_server_objects()}
    svc, deploy = objects["Service"], objects["Deployment"]
    # Contract: Service git-server in namespace mlops, port 22 (values/kind.yaml's gitSync.repo).
    assert (svc["metadata"]["name"], svc["metadata"]["namespace"]) == ("git-server", "mlops")
    kind_values = yaml.safe_load(KIND_VALUES.read_text())
    repo = urlparse(kind_values["airflow"]["dags"]["gitSync"]["repo"])
    assert repo.hostname == "git-server.mlops.svc.cluster.local"
    assert (repo.port or 22) == svc["spec"]["ports"][0]["port"] == 22
    assert repo.username == "git"
    assert repo.path == "/srv/git/platform.git"
    assert kind_values["airflow"]["dags"]["gitSync"]["branch"] == "main"
    # The Deployment agrees with the image (Dockerfile) and the entrypoint's defaults.
    dockerfile = (paths.IMAGES_DIR / "git-server" / "Dockerfile").read_text()
    entrypoint = (paths.IMAGES_DIR / "git-server" / "entrypoint.sh").read_text()
    pod = deploy["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == "mlops.local/git-server:dev"
    uid = re.findall(r"^USER\s+(\d+)", dockerfile, re.M)[-1]
    assert pod["securityContext"]["runAsUser"] == int(uid)
    exposed = re.search(r"^EXPOSE\s+(\d+)", dockerfile, re.M).group(1)
    assert c["ports"][0]["containerPort"] == int(exposed)
    env = {e["name"]: e["value"] for e in c.get("env", [])}
    assert env["GIT_SERVER_REPOS"] == "platform" and env["GIT_SERVER_BRANCH"] == "main"
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    for default in (
        "/srv/git",
        "/run/git-server",
        "/etc/git-server/host-keys",
        "/etc/git-server/authorized-keys",
    ):
        assert default in mounts
        assert default in entrypoint
    assert "${GIT_SERVER_AUTHORIZED_KEYS:-/etc/git-server/authorized-keys/authorized_keys}" in entrypoint
    items = {v["name"]: v for v in pod["volumes"]}["authorized-keys"]["secret"]["items"]
    assert items == [{"key": "authorized_keys", "path": "authorized_keys"}]


def test_ingress_manifest_is_a_pinned_release() -> None:
    lib = (KIND_DIR / "lib.sh").read_text()
    version = re.search(r"^INGRESS_NGINX_VERSION=(\S+)$", lib, re.M).group(1)
    assert re.fullmatch(r"controller-v\d+\.\d+\.\d+", version), version
    url = (
        re.search(r'^INGRESS_NGINX_MANIFEST="([^"]+)"$', lib, re.M)
        .group(1)
        .replace("$INGRESS_NGINX_VERSION", version)
    )
    parsed = urlparse(url)
    assert parsed.scheme == "https" and parsed.netloc == "raw.githubusercontent.com"
    assert parsed.path == f"/kubernetes/ingress-nginx/{version}/deploy/static/provider/kind/deploy.yaml"


@pytest.fixture(scope="module")
def kind_rendered(tmp_path_factory) -> Path:
    """values/kind.yaml rendered as kind-up renders it (+ the known_hosts overlay)."""
    text = helm_template(values_files=with_overlays(KIND_VALUES), namespace="mlops", release="mlops")
    out = tmp_path_factory.mktemp("kind-render") / "rendered.yaml"
    out.write_text(text)
    return out


def test_shared_volumes_for_every_shared_claim(kind_rendered: Path, tmp_path: Path) -> None:
    claims = shared_volumes.claims([str(kind_rendered)])
    proc = subprocess.run(
        [sys.executable, str(KIND_DIR / "shared_volumes.py"), str(kind_rendered)],
        capture_output=True,
        text=True,
        check=True,
    )
    docs = [{**d, "__source__": "shared_volumes.py"} for d in yaml.safe_load_all(proc.stdout)]
    validate_objects(docs, versions=paths.KUBE_VERSIONS)
    pvs = [d for d in docs if d["kind"] == "PersistentVolume"]
    assert [d["kind"] for d in docs].count("StorageClass") == 1
    assert len(pvs) == len(claims)
    dirs = proc.stderr.split()
    for claim, pv, directory in zip(claims, pvs, dirs, strict=True):
        assert pv["spec"]["claimRef"] == {"namespace": "mlops", "name": claim["metadata"]["name"]}
        assert pv["spec"]["capacity"]["storage"] == claim["spec"]["resources"]["requests"]["storage"]
        assert pv["spec"]["accessModes"] == claim["spec"]["accessModes"]
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert pv["spec"]["hostPath"]["path"] == f"/var/local/mlops-shared/{directory}"
    # values/kind.yaml puts the workspace on this class: there must be at least that claim.
    kind_values = yaml.safe_load(KIND_VALUES.read_text())
    if (kind_values.get("storage", {}).get("workspace", {}) or {}).get("storageClassName") == "mlops-shared":
        assert claims, "values/kind.yaml asks for mlops-shared but the chart rendered no such claim"


def test_shared_volume_for_a_given_claim() -> None:
    claim = {
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "ws"},
        "spec": {
            "storageClassName": "mlops-shared",
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "2Gi"}},
        },
    }
    directory, pv = shared_volumes.volume_for(claim, default_namespace="mlops")
    assert directory == "mlops-ws"
    validate_objects([{**pv, "__source__": "x"}], versions=paths.KUBE_VERSIONS)


# --- footprint ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "q", ["250m", "1", "0.5", "100Mi", "1Gi", "2G", "1e3", "1500k", "128974848", "129M", "123Mi"]
)
def test_quantities_agree_with_the_kubernetes_client(q: str) -> None:
    from kubernetes.utils import parse_quantity

    assert footprint.parse_quantity(q) == Decimal(parse_quantity(q))


def test_bad_quantity_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        footprint.parse_quantity("12 apples")


def test_pod_requests_count_init_containers_as_max() -> None:
    spec = {
        "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "1Mi"}}}],
        "containers": [
            {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            {"resources": {"requests": {"cpu": "200m", "memory": "64Mi"}}},
        ],
    }
    req = footprint.pod_requests(spec)
    assert req == {"cpu": Decimal(2), "memory": Decimal(128 * 2**20)}


def test_rendered_kind_platform_fits_the_budget(kind_rendered: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(KIND_DIR / "footprint.py"), str(kind_rendered), str(GIT_SERVER_MANIFEST)],
        capture_output=True,
        text=True,
    )
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TOTAL requests" in proc.stdout
    assert "Deployment/git-server x1" in proc.stdout


def test_footprint_over_budget_fails(kind_rendered: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(KIND_DIR / "footprint.py"), str(kind_rendered), str(GIT_SERVER_MANIFEST)],
        capture_output=True,
        text=True,
        env={**os.environ, "MLOPS_KIND_BUDGET_CPU": "500m"},
    )
    assert proc.returncode == 1
    assert "exceed the budget for cpu" in proc.stderr


def test_footprint_counts_replicas() -> None:
    objects = parse_documents(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x"},
                "spec": {
                    "replicas": 3,
                    "template": {"spec": {"containers": [{"resources": {"requests": {"cpu": "100m"}}}]}},
                },
            }
        )
    )
    assert footprint.pod_requests(footprint.pod_spec(objects[0]))["cpu"] == Decimal("0.1")


# --- Secrets: created once, then kept ----------------------------------------------------------

FAKE_KUBECTL = r"""
# Stand-in for `kc` (kubectl on the kind cluster; test double: no cluster here). Secrets are
# directories of key files under $FAKE_K8S; every Secret is still built and every -o template
# still evaluated by the real kubectl, offline (`create secret generic ... --dry-run=client`).
kc() {
  local verb="$1 $2"
  shift 2
  case "$verb" in
    "get secret")
      local name="" out=() a
      while (($#)); do
        case "$1" in
          -n) shift 2 ;;
          -o) out=(-o "$2"); shift 2 ;;
          *) name=$1; shift ;;
        esac
      done
      [[ -d "$FAKE_K8S/$name" ]] || return 1
      local files=()
      for a in "$FAKE_K8S/$name"/*; do files+=("--from-file=$(basename "$a")=$a"); done
      ((${#out[@]})) || out=(-o name)
      KUBECONFIG=/dev/null "${REAL_KUBECTL:-kubectl}" create secret generic "$name" "${files[@]}" --dry-run=client "${out[@]}"
      ;;
    "create secret")
      local name=$2 dir spec
      dir="$FAKE_K8S/$name"
      mkdir -p "$dir"
      shift 2
      for spec in "$@"; do
        case "$spec" in --from-file=*) spec=${spec#--from-file=}; cat "${spec#*=}" >"$dir/${spec%%=*}" ;; esac
      done
      echo "create $name" >>"$FAKE_K8S/log"
      ;;
    "label secret") ;;
    *) echo "fake kc: unexpected $verb $*" >&2; return 1 ;;
  esac
}
"""


@pytest.mark.skipif(
    not (shutil.which("kubectl") and shutil.which("openssl")),
    reason="needs kubectl (offline use) and openssl",
)
def test_secrets_are_created_once_and_kept(tmp_path: Path) -> None:
    fake = tmp_path / "k8s"
    fake.mkdir()
    script = f"""
set -euo pipefail
source {KIND_DIR}/lib.sh
{FAKE_KUBECTL}
source {KIND_DIR}/secrets.sh
ensure_platform_secrets
ensure_platform_secrets
write_generated_values {tmp_path}/generated.yaml
"""
    proc = subprocess.run(
        ["bash", "-c", script], env={**os.environ, "FAKE_K8S": str(fake)}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    created = (fake / "log").read_text().split("\n")
    assert [c for c in created if c] == [
        "create mlops-dev-database",
        "create mlops-airflow-metadata",
        "create mlops-kind-admin",
        "create mlops-airflow-fernet-key",
        "create mlops-airflow-api-secret-key",
        "create mlops-airflow-jwt-secret",
    ]
    assert proc.stdout.count("exists: kept") == 6
    password = (fake / "mlops-dev-database" / "password").read_text()
    assert re.fullmatch(r"[0-9a-f]{48}", password)
    uri = (fake / "mlops-airflow-metadata" / "connection").read_text()
    assert (
        uri
        == f"postgresql://airflow:{password}@mlops-airflow-mlops-dev-database.mlops.svc.cluster.local:5432/airflow"
    )
    admin = (fake / "mlops-kind-admin" / "password").read_text()
    generated = yaml.safe_load((tmp_path / "generated.yaml").read_text())
    assert generated == {
        "airflow": {
            "fernetKeySecretName": "mlops-airflow-fernet-key",
            "apiSecretKeySecretName": "mlops-airflow-api-secret-key",
            "jwtSecretName": "mlops-airflow-jwt-secret",
        }
    }
    # No password in the values: the create-user Job reads it from the Secret (values/kind.yaml).
    assert admin not in (tmp_path / "generated.yaml").read_text()
    # A valid Fernet key (what Airflow's cryptography.fernet.Fernet accepts).
    import base64

    fernet = (fake / "mlops-airflow-fernet-key" / "fernet-key").read_text()
    assert len(base64.urlsafe_b64decode(fernet)) == 32
    try:
        from cryptography.fernet import Fernet

        Fernet(fernet.encode())
    except ImportError:
        pass
    for name, key in (
        ("mlops-airflow-api-secret-key", "api-secret-key"),
        ("mlops-airflow-jwt-secret", "jwt-secret"),
    ):
        assert re.fullmatch(r"[0-9a-f]{48}", (fake / name / key).read_text())
    # The generated values are valid for the official chart 1.20.0 (its values.schema.json).
    from tests.values.test_airflow_values import _SCHEMA, airflow_errors

    if _SCHEMA is not None:
        kind_values = yaml.safe_load(KIND_VALUES.read_text())
        merged = {**kind_values["airflow"], **generated["airflow"]}
        assert airflow_errors({"airflow": merged}) == []
    assert oct((tmp_path / "generated.yaml").stat().st_mode & 0o777) == "0o600"
    assert admin != password


def test_secret_names_match_values_kind() -> None:
    """The Secrets kind-up creates are the ones values/kind.yaml refers to."""
    kind_values = yaml.safe_load(KIND_VALUES.read_text())
    secrets_sh = (KIND_DIR / "secrets.sh").read_text()
    assert f"DEV_DB_SECRET={kind_values['devDatabase']['auth']['existingSecret']}" in secrets_sh
    assert f"AIRFLOW_METADATA_SECRET={kind_values['airflow']['data']['metadataSecretName']}" in secrets_sh
    assert f"DEV_DB_USER={kind_values['devDatabase']['auth']['username']}" in secrets_sh
    af = kind_values["airflow"]
    assert f"FERNET_SECRET={af['fernetKeySecretName']}" in secrets_sh
    assert f"API_SECRET={af['apiSecretKeySecretName']}" in secrets_sh
    assert f"JWT_SECRET={af['jwtSecretName']}" in secrets_sh
    (admin_env,) = [e for e in af["createUserJob"]["env"] if e["name"] == "AIRFLOW_ADMIN_PASSWORD"]
    assert f"ADMIN_SECRET={admin_env['valueFrom']['secretKeyRef']['name']}" in secrets_sh
    # The database Service the URI points at is the one the chart renders for release mlops.
    objects = render_chart(
        values_files=with_overlays(KIND_VALUES), namespace="mlops", release="mlops", validate=False
    )
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    assert "mlops-airflow-mlops-dev-database" in services, services


# --- deploy key: kind-up <-> scripts/gitsync-bootstrap (the real script) -------------------------

# Stand-in kubectl on PATH for the bootstrap (test double: no cluster): `create secret ...
# --dry-run=client -o yaml` prints a manifest, `apply -f -` stores it under $FAKE_K8S.
FAKE_KUBECTL_BIN = r"""#!/usr/bin/env bash
echo "kubectl $*" >>"$FAKE_K8S/kubectl.log"
case "$1" in
  create) for a in "$@"; do case "$a" in --from-file=*) f=${a#--from-file=}; key=${f%%=*}; file=${f#*=} ;; esac; done
          printf 'kind: Secret\nname: %s\ndata: %s=%s\n' "$4" "$key" "$(base64 <"$file" | tr -d '\n')" ;;
  apply) cat >"$FAKE_K8S/applied.yaml" ;;
  *) exit 1 ;;
esac
"""


def _run_deploy_key(tmp: Path, fake: Path, existing_key: Path | None) -> subprocess.CompletedProcess:
    bindir = tmp / "fakebin"
    bindir.mkdir(exist_ok=True)
    (bindir / "kubectl").write_text(FAKE_KUBECTL_BIN)
    (bindir / "kubectl").chmod(0o755)
    host = tmp / "host_key"
    if not host.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host)], check=True)
    work = tmp / f"work-{'reuse' if existing_key else 'first'}"
    work.mkdir()
    if existing_key:  # the Secret of the first run, as the cluster would hold it
        (fake / "mlops-git-ssh").mkdir(exist_ok=True)
        (fake / "mlops-git-ssh" / "gitSshKey").write_bytes(existing_key.read_bytes())
    script = f"""
set -euo pipefail
source {KIND_DIR}/lib.sh
{FAKE_KUBECTL}
source {KIND_DIR}/deploy-key.sh
ensure_deploy_key {work} {host}.pub {tmp}/known_hosts
printf 'DEPLOY_PUB=%s\\n' "$DEPLOY_PUB"
"""
    return subprocess.run(
        ["bash", "-c", script],
        env={
            **os.environ,
            "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_K8S": str(fake),
            "REAL_KUBECTL": shutil.which("kubectl") or "kubectl",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(
    not (shutil.which("ssh-keygen") and shutil.which("kubectl")),
    reason="needs ssh-keygen and kubectl (offline use)",
)
def test_deploy_key_through_the_bootstrap_first_run_and_reuse(tmp_path: Path) -> None:
    fake = tmp_path / "k8s"
    fake.mkdir()
    proc = _run_deploy_key(tmp_path, fake, existing_key=None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "deploy key: generating" in proc.stdout
    assert "pinned:" in proc.stdout and "SHA256:" in proc.stdout
    host_type, host_b64 = (tmp_path / "host_key.pub").read_text().split()[:2]
    # known_hosts for git-sync: the in-cluster name (port 22), the host key from the Secret.
    assert (
        tmp_path / "known_hosts"
    ).read_text() == f"git-server.mlops.svc.cluster.local {host_type} {host_b64}\n"
    pub = re.search(r"^DEPLOY_PUB=(.+)$", proc.stdout, re.M).group(1)
    applied = (fake / "applied.yaml").read_text()
    assert "name: mlops-git-ssh" in applied and "data: gitSshKey=" in applied
    assert "--namespace mlops" in (fake / "kubectl.log").read_text()
    # The Secret holds the private half of DEPLOY_PUB.
    import base64

    private = tmp_path / "from-secret"
    private.write_bytes(base64.b64decode(applied.split("gitSshKey=")[1].strip()))
    private.chmod(0o600)
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(private)], capture_output=True, text=True, check=True
    )
    assert derived.stdout.split()[:2] == pub.split()[:2]

    # Second run: the key comes back from the Secret; same public key (comment aside).
    again = _run_deploy_key(tmp_path, fake, existing_key=private)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "deploy key: reusing Secret mlops-git-ssh" in again.stdout
    pub2 = re.search(r"^DEPLOY_PUB=(.+)$", again.stdout, re.M).group(1)
    assert pub2.split()[:2] == pub.split()[:2]


# --- the go-template kind-up waits with (executed by Go's text/template, as kubectl does) -------

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


def test_footprint_names_containers_without_requests(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "scheduler"},
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {"name": "scheduler"},
                                {"name": "git-sync", "resources": {"requests": {"cpu": "10m"}}},
                            ]
                        }
                    }
                },
            }
        )
    )
    proc = subprocess.run(
        [sys.executable, str(KIND_DIR / "footprint.py"), str(manifest)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "note: 1 container(s) set no requests" in proc.stdout
    assert "Deployment/scheduler[scheduler]" in proc.stdout
    assert "git-sync" not in proc.stdout.split("note:")[1]
