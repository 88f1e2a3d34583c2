"""The Secrets and keys of kind-up (stand-in kubectl, no cluster): scripts/kind/secrets.sh creates
each Secret once and keeps it, with the names values/kind.yaml refers to; scripts/kind/deploy-key.sh
makes the git-sync deploy key through the real scripts/gitsync-bootstrap and reuses it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.helm import render_chart
from tests.support.kind import KIND_DIR, KIND_VALUES
from tests.support.overlays import with_overlays

# --- Secrets: created once, then kept ----------------------------------------------------------

FAKE_KUBECTL = r"""
# Stand-in for `kc` (kubectl on the kind cluster; test double: no cluster here). Secrets are
# directories of key files under $FAKE_K8S/<namespace>/; every Secret is still built and every -o template
# still evaluated by the real kubectl, offline (`create secret generic ... --dry-run=client`).
kc() {
  local verb="$1 $2"
  shift 2
  case "$verb" in
    "get secret")
      local name="" ns="" out=() a
      while (($#)); do
        case "$1" in
          -n) ns=$2; shift 2 ;;
          -o) out=(-o "$2"); shift 2 ;;
          *) name=$1; shift ;;
        esac
      done
      [[ -d "$FAKE_K8S/$ns/$name" ]] || return 1
      local files=()
      for a in "$FAKE_K8S/$ns/$name"/*; do files+=("--from-file=$(basename "$a")=$a"); done
      ((${#out[@]})) || out=(-o name)
      KUBECONFIG=/dev/null "${REAL_KUBECTL:-kubectl}" create secret generic "$name" "${files[@]}" --dry-run=client "${out[@]}"
      ;;
    "create secret")
      local name=$2 ns="" dir spec
      shift 2
      local prev=""
      for spec in "$@"; do
        if [[ "$prev" == -n ]]; then ns=$spec; fi
        prev=$spec
      done
      dir="$FAKE_K8S/$ns/$name"
      mkdir -p "$dir"
      for spec in "$@"; do
        case "$spec" in
          --from-file=*) spec=${spec#--from-file=}; cat "${spec#*=}" >"$dir/${spec%%=*}" ;;
          --from-env-file=*)
            local line
            while IFS= read -r line; do printf '%s' "${line#*=}" >"$dir/${line%%=*}"; done <"${spec#--from-env-file=}"
            ;;
        esac
      done
      echo "create $ns/$name" >>"$FAKE_K8S/log"
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
        "create mlops/mlops-dev-database",
        "create mlops/mlops-airflow-metadata",
        "create mlops/mlops-kind-admin",
        "create mlops/mlops-airflow-fernet-key",
        "create mlops/mlops-airflow-api-secret-key",
        "create mlops/mlops-airflow-jwt-secret",
        "create mlops/mlflow-auth",
        # serving.namespace (<release namespace>-serving): the model servers' MLflow credential
        # and the ingress basic auth, which ingress-nginx reads in the Ingress's namespace
        "create mlops-serving/mlflow-auth",
        "create mlops-serving/model-serving-auth",
    ]
    assert proc.stdout.count("exists: kept") == 9
    # MLflow's basic-auth app: admin user, a password and a Flask secret key (hex, 48 chars).
    assert (fake / "mlops" / "mlflow-auth" / "username").read_text() == "admin"
    for key in ("password", "flask-secret-key"):
        assert re.fullmatch(r"[0-9a-f]{48}", (fake / "mlops" / "mlflow-auth" / key).read_text())
    # the model servers' copy: the same user and password, no Flask secret key
    client = {p.name: p.read_text() for p in (fake / "mlops-serving" / "mlflow-auth").iterdir()}
    assert client == {k: (fake / "mlops" / "mlflow-auth" / k).read_text() for k in ("username", "password")}
    # ingress-nginx basic auth: an apr1 htpasswd line that verifies the stored password.
    user, hashed = (fake / "mlops-serving" / "model-serving-auth" / "auth").read_text().split(":", 1)
    serving_password = (fake / "mlops-serving" / "model-serving-auth" / "password").read_text()
    assert user == "kind" and hashed.startswith("$apr1$")
    salt = hashed.split("$")[2]
    again = subprocess.run(
        ["openssl", "passwd", "-apr1", "-salt", salt, "-stdin"],
        input=serving_password,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert again == hashed
    password = (fake / "mlops" / "mlops-dev-database" / "password").read_text()
    assert re.fullmatch(r"[0-9a-f]{48}", password)
    uri = (fake / "mlops" / "mlops-airflow-metadata" / "connection").read_text()
    assert (
        uri
        == f"postgresql://airflow:{password}@mlops-airflow-mlops-dev-database.mlops.svc.cluster.local:5432/airflow"
    )
    admin = (fake / "mlops" / "mlops-kind-admin" / "password").read_text()
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

    fernet = (fake / "mlops" / "mlops-airflow-fernet-key" / "fernet-key").read_text()
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
        assert re.fullmatch(r"[0-9a-f]{48}", (fake / "mlops" / name / key).read_text())
    # The generated values are valid for the official chart 1.20.0 (its values.schema.json).
    from tests.support.official_schema import airflow_errors, official_schema

    if official_schema() is not None:
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
    # MLflow and model-serving auth: the chart's defaults, which values/kind.yaml keeps.
    defaults = yaml.safe_load((KIND_VALUES.parents[1] / "charts" / "airflow-mlops" / "values.yaml").read_text())
    mlflow_auth = {**defaults["mlflow"]["auth"], **(kind_values.get("mlflow", {}).get("auth") or {})}
    serving_auth = {**defaults["serving"]["auth"], **(kind_values.get("serving", {}).get("auth") or {})}
    assert f"MLFLOW_AUTH_SECRET={mlflow_auth['existingSecret']}" in secrets_sh
    assert mlflow_auth.get("clientSecret") in ("", None, mlflow_auth["existingSecret"])
    assert f"SERVING_AUTH_SECRET={serving_auth['existingSecret']}" in secrets_sh
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
        (fake / "mlops" / "mlops-git-ssh").mkdir(parents=True, exist_ok=True)
        (fake / "mlops" / "mlops-git-ssh" / "gitSshKey").write_bytes(existing_key.read_bytes())
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
