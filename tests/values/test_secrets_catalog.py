"""The Secrets catalog (values/secrets/<environment>.json) against the rendered chart, the guide,
the ExternalSecret/SealedSecret examples, and scripts/platform-secrets (with a stand-in kubectl).

Every Secret a rendered object reads (env secretKeyRef/envFrom, secret volumes, imagePullSecrets,
Ingress TLS, and the imagePullSecrets of the task pod templates in tasks.namespace) and that the
chart does not render itself is in the catalog with its keys, and every catalog entry is read.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import paths
from tests.support.helm import render_chart

CATALOGS = sorted(paths.SECRETS_CATALOG_DIR.glob("*.json"))
SCRIPT = paths.SCRIPTS_DIR / "platform-secrets"
GUIDE = paths.VALUES_DIR / "README.md"


def load(catalog: Path) -> dict[str, Any]:
    return json.loads(catalog.read_text())


def secret_refs(objects: list[dict[str, Any]], namespace: str, tasks_namespace: str) -> dict:
    """{(namespace, name): {keys}} of every Secret the objects read (None key = whole Secret)."""
    refs: dict[tuple[str, str], set] = {}

    def add(ns: str, name: str, key: str | None) -> None:
        refs.setdefault((ns, name), set()).add(key)

    def pod(spec: dict[str, Any], ns: str) -> None:
        for s in spec.get("imagePullSecrets") or []:
            add(ns, s["name"], ".dockerconfigjson")
        for v in spec.get("volumes") or []:
            if "secret" in v:
                for k in [i["key"] for i in v["secret"].get("items") or []] or [None]:
                    add(ns, v["secret"]["secretName"], k)
            for src in (v.get("projected") or {}).get("sources") or []:
                if "secret" in src:
                    add(ns, src["secret"]["name"], None)
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for e in c.get("env") or []:
                r = (e.get("valueFrom") or {}).get("secretKeyRef")
                if r:
                    add(ns, r["name"], r["key"])
            for e in c.get("envFrom") or []:
                if "secretRef" in e:
                    add(ns, e["secretRef"]["name"], None)

    for o in objects:
        ns = o["metadata"].get("namespace") or namespace
        spec = o.get("spec") or {}
        if o["kind"] == "CronJob":
            pod(spec["jobTemplate"]["spec"]["template"]["spec"], ns)
        elif "template" in spec and isinstance(spec["template"], dict) and "spec" in spec["template"]:
            pod(spec["template"]["spec"], ns)
        if o["kind"] == "Ingress":
            # ingress-nginx basic auth (serving.auth): the htpasswd Secret of the model endpoints
            auth = (o["metadata"].get("annotations") or {}).get("nginx.ingress.kubernetes.io/auth-secret")
            if auth:
                add(ns, auth, "auth")
            for t in spec.get("tls") or []:
                add(ns, t["secretName"], "tls.crt")
                add(ns, t["secretName"], "tls.key")
        if o["kind"] == "ConfigMap":
            for key, text in (o.get("data") or {}).items():
                if key.endswith(".yaml"):
                    doc = yaml.safe_load(text)
                    if isinstance(doc, dict) and doc.get("kind") == "Pod":
                        pod(doc["spec"], tasks_namespace)
    return refs


@pytest.mark.parametrize("catalog", CATALOGS, ids=lambda p: p.name)
def test_catalog_lists_exactly_the_secrets_the_platform_reads(catalog: Path) -> None:
    cat = load(catalog)
    values_file = paths.REPO / cat["valuesFile"]
    values = yaml.safe_load(values_file.read_text())
    namespace = cat["namespaces"][0]
    tasks_ns = (values.get("tasks") or {}).get("namespace") or namespace
    objects = render_chart(
        values_files=[values_file],
        release=cat["release"],
        namespace=namespace,
        include_subchart=True,
        validate=False,
    )
    rendered = {
        (o["metadata"].get("namespace") or namespace, o["metadata"]["name"])
        for o in objects
        if o["kind"] == "Secret"
    }
    refs = {k: v for k, v in secret_refs(objects, namespace, tasks_ns).items() if k not in rendered}
    listed = {(s["namespace"], s["name"]): s for s in cat["secrets"]}
    problems = []
    for ref, keys in sorted(refs.items()):
        if ref not in listed:
            problems.append(
                f"{ref[0]}/{ref[1]} (keys {sorted(k for k in keys if k)}) is read but not in {catalog.name}"
            )
            continue
        missing = {k for k in keys if k} - set(listed[ref]["keys"])
        if missing:
            problems.append(f"{ref[0]}/{ref[1]}: keys {sorted(missing)} read but not in the catalog")
    for ref in sorted(listed.keys() - refs.keys()):
        problems.append(f"{ref[0]}/{ref[1]} is in {catalog.name} but nothing reads it")
    for s in cat["secrets"]:
        assert s["namespace"] in cat["namespaces"], s
        for key, spec in s["keys"].items():
            assert spec["create"] in ("fernet", "random", "input", "external"), (s["name"], key)
            assert spec["create"] != "input" or spec.get("from"), (s["name"], key)
            assert spec["create"] != "external" or spec.get("how"), (s["name"], key)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("catalog", CATALOGS, ids=lambda p: p.name)
def test_guide_lists_every_secret_of_the_catalog(catalog: Path) -> None:
    guide = GUIDE.read_text()
    rows = {
        (m.group(1), m.group(2))
        for m in re.finditer(r"^\| `([a-z0-9.-]+)` \| `([a-z0-9-]+)` \|", guide, re.M)
    }
    for s in load(catalog)["secrets"]:
        assert (s["name"], s["namespace"]) in rows, f"{GUIDE}: no table row for {s['namespace']}/{s['name']}"
        row = re.search(rf"^\| `{re.escape(s['name'])}` \| `{s['namespace']}` \|(.*)$", guide, re.M)
        for key in s["keys"]:
            assert f"`{key}`" in row.group(1), f"{GUIDE}: row of {s['name']} does not name key {key}"


def test_external_secret_and_sealed_secret_examples_cover_the_generated_secrets() -> None:
    cat = load(paths.SECRETS_CATALOG_DIR / "production.json")
    docs = [
        d
        for d in yaml.safe_load_all((paths.SECRETS_CATALOG_DIR / "external-secrets.example.yaml").read_text())
        if d
    ]
    external = {
        (d["metadata"]["namespace"], d["spec"]["target"]["name"]): {x["secretKey"] for x in d["spec"]["data"]}
        for d in docs
        if d["kind"] == "ExternalSecret"
    }
    assert all(d["apiVersion"] == "external-secrets.io/v1" for d in docs if d["kind"] == "ExternalSecret")
    sealed_docs = [
        d
        for d in yaml.safe_load_all((paths.SECRETS_CATALOG_DIR / "sealed-secrets.example.yaml").read_text())
        if d
    ]
    sealed = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): set(d["spec"]["encryptedData"])
        for d in sealed_docs
    }
    for s in cat["secrets"]:
        if any(k["create"] == "external" for k in s["keys"].values()):
            continue  # made by their own tools (deploy key, pull token, TLS)
        ref = (s["namespace"], s["name"])
        assert external.get(ref) == set(s["keys"]), f"ExternalSecret for {ref}: {external.get(ref)}"
        assert sealed.get(ref) == set(s["keys"]), f"SealedSecret for {ref}: {sealed.get(ref)}"


# --- scripts/platform-secrets with a stand-in kubectl ----------------------------------------------

FAKE_KUBECTL = r"""
import json, os, sys
store = os.environ["FAKE_K8S"]
with open(os.path.join(store, "argv.log"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
args = sys.argv[1:]
if args[:2] == ["get", "secret"]:
    name, ns = args[2], args[args.index("-n") + 1]
    path = os.path.join(store, f"{ns}.{name}.json")
    if os.path.exists(path):
        print(open(path).read())
    sys.exit(0)
if args[:3] == ["create", "-f", "-"]:
    obj = json.load(sys.stdin)
    path = os.path.join(store, f"{obj['metadata']['namespace']}.{obj['metadata']['name']}.json")
    if os.path.exists(path):
        sys.exit("AlreadyExists")
    open(path, "w").write(json.dumps(obj))
    sys.exit(0)
sys.exit(f"unexpected {args}")
"""


@pytest.fixture
def fake(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    kubectl = tmp_path / "kubectl.py"
    kubectl.write_text(FAKE_KUBECTL)
    store = tmp_path / "store"
    store.mkdir()
    env = {
        **os.environ,
        "FAKE_K8S": str(store),
        "KUBECTL": f"{sys.executable} {kubectl}",
        "AIRFLOW_METADATA_CONNECTION": "postgresql://airflow:db-pass-1@pg:5432/airflow",
        "MLFLOW_DB_URI": "postgresql://mlflow:db-pass-2@pg:5432/mlflow",
        "MLFLOW_S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "MLFLOW_S3_SECRET_ACCESS_KEY": "s3-secret-value",
        "MLFLOW_AUTH_USERNAME": "mlflow-admin",
        "MLFLOW_AUTH_PASSWORD": "mlflow-admin-pass-3",
    }
    return store, env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def stored(store: Path, ns: str, name: str) -> dict[str, str]:
    obj = json.loads((store / f"{ns}.{name}.json").read_text())
    return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}


def test_script_creates_once_and_keeps(fake: tuple[Path, dict[str, str]]) -> None:
    store, env = fake
    first = run(env)
    assert first.returncode == 0, first.stdout + first.stderr
    cat = load(paths.SECRETS_CATALOG_DIR / "production.json")
    generated = [s for s in cat["secrets"] if all(k["create"] != "external" for k in s["keys"].values())]
    externals = [s for s in cat["secrets"] if s not in generated]
    for s in generated:
        assert f"created  {s['namespace']}/{s['name']}" in first.stdout
    for s in externals:
        assert f"MISSING  {s['namespace']}/{s['name']}" in first.stdout
        assert not (store / f"{s['namespace']}.{s['name']}.json").exists()
    fernet = stored(store, "mlops", "airflow-fernet-key")["fernet-key"]
    assert len(base64.urlsafe_b64decode(fernet)) == 32
    assert re.fullmatch(r"[0-9a-f]{48}", stored(store, "mlops", "airflow-admin")["password"])
    assert stored(store, "mlops", "mlflow-s3") == {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "s3-secret-value",
    }
    before = {p.name: p.read_text() for p in store.glob("mlops*.json")}
    second = run(env)
    assert second.returncode == 0
    assert "created" not in second.stdout
    assert {p.name: p.read_text() for p in store.glob("mlops*.json")} == before
    # No value on any command line.
    argv = (store / "argv.log").read_text()
    for s in generated:
        for value in stored(store, s["namespace"], s["name"]).values():
            assert value not in argv


def test_script_check_fails_until_everything_exists(fake: tuple[Path, dict[str, str]]) -> None:
    store, env = fake
    check = run(env, "--check")
    assert check.returncode == 1
    assert not list(store.glob("mlops*.json")), "--check created something"
    run(env)
    assert run(env, "--check").returncode == 1  # the external ones are still missing
    cat = load(paths.SECRETS_CATALOG_DIR / "production.json")
    for s in cat["secrets"]:
        path = store / f"{s['namespace']}.{s['name']}.json"
        if not path.exists():
            path.write_text(json.dumps({"data": {k: "eA==" for k in s["keys"]}}))
    final = run(env, "--check")
    assert final.returncode == 0, final.stdout + final.stderr


def test_script_input_without_value_names_the_variable(fake: tuple[Path, dict[str, str]]) -> None:
    _, env = fake
    env = {k: v for k, v in env.items() if k != "MLFLOW_DB_URI"}
    proc = run(env, "--only", "mlflow-db")
    assert proc.returncode != 0
    assert "MLFLOW_DB_URI" in proc.stderr


def test_script_dry_run_prints_no_values(fake: tuple[Path, dict[str, str]]) -> None:
    store, env = fake
    proc = run(env, "--dry-run")
    assert proc.returncode == 0
    assert "create   mlops/airflow-fernet-key (keys fernet-key; fernet)" in proc.stdout
    assert "db-pass-1" not in proc.stdout
    assert not list(store.glob("mlops*.json"))


def test_script_print_is_a_secret_for_kubeseal_without_the_cluster(fake: tuple[Path, dict[str, str]]) -> None:
    store, env = fake
    proc = run(env, "--print", "--only", "airflow-jwt-secret")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["kind"] == "Secret" and obj["metadata"] == {
        **obj["metadata"],
        "name": "airflow-jwt-secret",
        "namespace": "mlops",
    }
    assert set(obj["data"]) == {"jwt-secret"}
    assert not (store / "argv.log").exists(), "--print must not call kubectl"
