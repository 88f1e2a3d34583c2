"""The manifests kind-up applies besides the chart: the git server and the shared
PersistentVolumes validate strictly against the Kubernetes schemas and the restricted Pod Security
Standard, and agree with the git-server image and with values/kind.yaml; the ingress controller
manifest is a pinned release."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml

from tests.support import paths
from tests.support.k8s import restricted_violations, validate_objects
from tests.support.kind import GIT_SERVER_MANIFEST, KIND_DIR, KIND_VALUES, kind_script

shared_volumes = kind_script("shared_volumes")


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
