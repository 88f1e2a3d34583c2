"""Helpers of the platform tests in tests/cluster: install the umbrella chart (our templates and the
official Airflow chart 1.20.0) with the pinned helm, as a cluster administrator would prepare it.

kwok nodes run no containers: an installed platform here means every object was accepted by the
API server (admission, Pod Security, RBAC, immutable fields), every pod was scheduled and is
Running/Succeeded by kwok's status, every claim is Bound. Nothing of Airflow or MLflow executes.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.paths import CHART_DIR, REPO, SCRIPTS_DIR

HELM_TIMEOUT = "3m"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
DEFAULT_STORAGE_CLASS = "standard"  # scripts/cluster-up


@dataclass
class Release:
    name: str
    namespace: str
    values: list[Path]
    sets: list[str] = field(default_factory=list)
    tasks_namespace: str | None = None
    serving_namespace: str | None = None  # serving.namespace (model servers, serving Role)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def namespaces(self) -> list[str]:
        return sorted({self.namespace, self.tasks_namespace or self.namespace, self.serving_namespace or self.namespace})

    def args(self, extra_values: list[Path] | None = None, extra_sets: list[str] | None = None) -> list[str]:
        out: list[str] = []
        for v in [*self.values, *(extra_values or [])]:
            out += ["-f", str(v)]
        for s in [*self.sets, *(extra_sets or [])]:
            out += ["--set", s]
        return out


def render(cluster, release: Release, **kw) -> list[dict]:
    """`helm template` of the release (what `upgrade --install` will apply, hooks included)."""
    out = cluster.helm("template", release.name, str(CHART_DIR), "-n", release.namespace, *release.args(**kw)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def pod_specs(docs: list[dict], tasks_namespace: str) -> list[tuple[str, str, dict]]:
    """(namespace, what, pod spec) of every workload's pod template, and of the pod templates
    the chart ships in ConfigMaps (task pods, created in the task namespace)."""
    out = []
    for d in docs:
        ns = d["metadata"].get("namespace")
        if d["kind"] in WORKLOAD_KINDS:
            spec = json.loads(json.dumps(d["spec"]["template"]["spec"]))
            # as the StatefulSet controller does: a volume per claim template
            for t in d["spec"].get("volumeClaimTemplates") or []:
                claim = f"{t['metadata']['name']}-{d['metadata']['name']}-0"
                spec.setdefault("volumes", []).append({"name": t["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim}})
            out.append((ns, f"{d['kind']}/{d['metadata']['name']}", spec))
        elif d["kind"] == "ConfigMap":
            for key, text in (d.get("data") or {}).items():
                if key.endswith(".yaml"):
                    pod = yaml.safe_load(text)
                    if isinstance(pod, dict) and pod.get("kind") == "Pod":
                        out.append((tasks_namespace, f"pod template {key}", pod["spec"]))
    return out


def referenced_secrets(docs: list[dict], release_namespace: str, tasks_namespace: str) -> dict[tuple[str, str], dict]:
    """{(namespace, name): {"type": ..., "keys": set}} of every Secret the rendered objects read
    and do not render themselves."""
    refs: dict[tuple[str, str], dict] = {}

    def add(ns, name, keys=(), type_="Opaque"):
        entry = refs.setdefault((ns or release_namespace, name), {"type": type_, "keys": set()})
        entry["keys"].update(keys)
        if type_ != "Opaque":
            entry["type"] = type_

    for ns, _what, spec in pod_specs(docs, tasks_namespace):
        for ps in spec.get("imagePullSecrets") or []:
            add(ns, ps["name"], (".dockerconfigjson",), "kubernetes.io/dockerconfigjson")
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for env in c.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    add(ns, ref["name"], (ref["key"],))
            for ef in c.get("envFrom") or []:
                if ef.get("secretRef") and not ef["secretRef"].get("optional"):
                    add(ns, ef["secretRef"]["name"])
        for vol in spec.get("volumes") or []:
            sec = vol.get("secret")
            if sec and not sec.get("optional"):
                add(ns, sec["secretName"], [i["key"] for i in sec.get("items") or []])
    for d in docs:
        if d["kind"] == "Ingress":
            for tls in d["spec"].get("tls") or []:
                if tls.get("secretName"):
                    add(d["metadata"].get("namespace"), tls["secretName"], ("tls.crt", "tls.key"), "kubernetes.io/tls")
    rendered = {(d["metadata"].get("namespace") or release_namespace, d["metadata"]["name"])
                for d in docs if d["kind"] == "Secret"}
    return {k: v for k, v in refs.items() if k not in rendered}


def create_secret(cluster, namespace: str, name: str, type_: str, keys) -> bool:
    """Create a Secret with placeholder values (kwok runs nothing that would read them); False if it exists."""
    if type_ == "kubernetes.io/dockerconfigjson":
        data = {".dockerconfigjson": json.dumps({"auths": {"registry.invalid": {"auth": base64.b64encode(b"u:p").decode()}}})}
    else:
        data = {k: f"placeholder-{k}" for k in keys}
        if type_ == "kubernetes.io/tls":
            data = {"tls.crt": "placeholder", "tls.key": "placeholder"}
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=name, namespace=namespace), type=type_, string_data=data)
    try:
        cluster.core.create_namespaced_secret(namespace, body)
        return True
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise


def create_secrets_from_catalog(cluster, catalog: Path) -> str:
    """The production way (values/secrets/<env>.json + scripts/platform-secrets): what other tools
    make (external: deploy key, pull secret, certificates) is created here as those tools would;
    the rest by the script itself; then `--check` must find every Secret. Returns the script's output."""
    spec = json.loads(catalog.read_text())
    env = cluster.env()
    for secret in spec["secrets"]:
        methods = {k["create"] for k in secret["keys"].values()}
        if "external" in methods:
            create_secret(cluster, secret["namespace"], secret["name"], secret.get("type", "Opaque"), secret["keys"])
        for key in secret["keys"].values():
            if key["create"] == "input":
                env[key["from"]] = key.get("example") or f"placeholder-{key['from'].lower()}"
    script = str(SCRIPTS_DIR / "platform-secrets")
    made = subprocess.run([script, "--catalog", str(catalog)], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert made.returncode == 0, made.stdout + made.stderr
    check = subprocess.run([script, "--catalog", str(catalog), "--check"], env=env, capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert check.returncode == 0, f"scripts/platform-secrets --check:\n{check.stdout}{check.stderr}"
    return made.stdout


def secrets_catalog(name: str) -> Path | None:
    """values/secrets/<name>.json when it and scripts/platform-secrets exist in this checkout."""
    catalog = REPO / "values" / "secrets" / f"{name}.json"
    if catalog.exists() and (SCRIPTS_DIR / "platform-secrets").exists():
        return catalog
    return None


def provide_volumes(cluster, docs: list[dict], release: Release, tag: str) -> list[str]:
    """As the administrator of a cluster with statically provisioned storage: one Retain PV per
    claim the release makes (PVCs with a storage class, StatefulSet claim templates), of its
    class, size and access modes, unless that claim already exists (a kept claim is reused).
    Claims with storageClassName "" are pre-bound to the chart's own PV (the NFS data sets)."""
    wanted = []
    for d in docs:
        ns = d["metadata"].get("namespace") or release.namespace
        if d["kind"] == "PersistentVolumeClaim":
            wanted.append((ns, d["metadata"]["name"], d["spec"]))
        elif d["kind"] == "StatefulSet":
            for t in d["spec"].get("volumeClaimTemplates") or []:
                for i in range(d["spec"].get("replicas", 1)):
                    wanted.append((ns, f"{t['metadata']['name']}-{d['metadata']['name']}-{i}", t["spec"]))
    made = []
    for ns, name, spec in wanted:
        sc = spec.get("storageClassName", DEFAULT_STORAGE_CLASS)
        if sc == "":
            continue
        try:
            cluster.core.read_namespaced_persistent_volume_claim(name, ns)
            continue
        except ApiException as exc:
            if exc.status != 404:
                raise
        pv = f"{tag}-{len(made)}"
        cluster.core.create_persistent_volume(client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=pv, labels={"mlops.test/simulated": "true", "mlops.test/for": f"{ns}.{name}"}),
            spec=client.V1PersistentVolumeSpec(
                storage_class_name=sc, capacity={"storage": spec["resources"]["requests"]["storage"]},
                access_modes=spec["accessModes"], persistent_volume_reclaim_policy="Retain",
                host_path=client.V1HostPathVolumeSource(path=f"/var/local/mlops-sim/{pv}", type="DirectoryOrCreate"),
            ),
        ))
        made.append(pv)
    return made


def helm_install(cluster, release: Release, what: str, timeout: str = HELM_TIMEOUT, **kw) -> float:
    """`helm upgrade --install --wait --wait-for-jobs`; seconds taken (also kept in release.timings[what]).
    On failure the message carries the pods and events of the release's namespaces."""
    started = time.monotonic()
    proc = cluster.helm("upgrade", "--install", release.name, str(CHART_DIR), "-n", release.namespace,
                        "--wait", "--wait-for-jobs", "--timeout", timeout, *release.args(**kw), check=False)
    took = time.monotonic() - started
    if proc.returncode != 0:
        diag = "\n".join(cluster.diagnostics(ns) for ns in release.namespaces)
        raise AssertionError(f"helm upgrade --install ({what}) failed after {took:.0f}s:\n{proc.stderr}\n{diag}")
    release.timings[what] = took
    return took


def helm_release(cluster, release: Release) -> dict:
    return json.loads(cluster.helm("status", release.name, "-n", release.namespace, "-o", "json").stdout)


def manifest_objects(cluster, release: Release) -> list[dict]:
    out = cluster.helm("get", "manifest", release.name, "-n", release.namespace).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def dynamic(cluster):
    from kubernetes.dynamic import DynamicClient

    if not hasattr(cluster, "_dyn"):
        object.__setattr__(cluster, "_dyn", DynamicClient(cluster.api))
    return cluster._dyn


def live(cluster, obj: dict, namespace: str) -> Any:
    res = dynamic(cluster).resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    ns = (obj["metadata"].get("namespace") or namespace) if res.namespaced else None
    return res.get(name=obj["metadata"]["name"], namespace=ns)


def snapshot(cluster, release: Release) -> dict[str, Any]:
    """metadata.generation of every object of the release, the pod-template-hash of every
    Deployment's ReplicaSets with pods, and the update revision of every StatefulSet."""
    snap: dict[str, Any] = {}
    for obj in manifest_objects(cluster, release):
        got = live(cluster, obj, release.namespace)
        key = f"{obj['kind']}/{got.metadata.namespace or ''}/{obj['metadata']['name']}"
        snap[key] = got.metadata.generation
        if obj["kind"] == "Deployment":
            sel = ",".join(f"{k}={v}" for k, v in got.spec.selector.matchLabels.items())
            rs = cluster.apps.list_namespaced_replica_set(got.metadata.namespace, label_selector=sel).items
            snap[key + " pod-template-hash"] = sorted(
                r.metadata.labels["pod-template-hash"] for r in rs if (r.spec.replicas or 0) > 0)
        elif obj["kind"] == "StatefulSet":
            snap[key + " updateRevision"] = got.status.updateRevision
    return snap


def changed(before: dict, after: dict) -> dict[str, tuple]:
    return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}


def assert_platform_ready(cluster, release: Release) -> dict[str, list[str]]:
    """Every Deployment available, every StatefulSet ready at its update revision, every claim
    Bound, every Job of the release complete, every hook Job helm ran Succeeded. Returns what was seen."""
    seen: dict[str, list[str]] = {"Deployment": [], "StatefulSet": [], "PVC": [], "Job": [], "hook Job": []}
    problems = []
    for ns in release.namespaces:
        for d in cluster.apps.list_namespaced_deployment(ns).items:
            st = d.status
            ok = (st.available_replicas or 0) == d.spec.replicas == (st.updated_replicas or 0) \
                and st.observed_generation == d.metadata.generation
            (seen["Deployment"] if ok else problems).append(f"Deployment {ns}/{d.metadata.name} {st.available_replicas}/{d.spec.replicas}")
        for s in cluster.apps.list_namespaced_stateful_set(ns).items:
            st = s.status
            ok = (st.ready_replicas or 0) == s.spec.replicas and st.current_revision == st.update_revision
            (seen["StatefulSet"] if ok else problems).append(f"StatefulSet {ns}/{s.metadata.name} {st.ready_replicas}/{s.spec.replicas}")
        for c in cluster.core.list_namespaced_persistent_volume_claim(ns).items:
            ok = c.status.phase == "Bound"
            (seen["PVC"] if ok else problems).append(f"PVC {ns}/{c.metadata.name} {c.status.phase} -> {c.spec.volume_name}")
        for j in cluster.batch.list_namespaced_job(ns).items:
            ok = any(x.type == "Complete" and x.status == "True" for x in j.status.conditions or [])
            (seen["Job"] if ok else problems).append(f"Job {ns}/{j.metadata.name}")
    for hook in helm_release(cluster, release).get("hooks") or []:
        if hook["kind"] == "Job":
            ok = hook["last_run"]["phase"] == "Succeeded"
            (seen["hook Job"] if ok else problems).append(f"hook Job {hook['name']} {hook['last_run']['phase']!r}")
    assert not problems, "not ready:\n" + "\n".join(problems) + "\n" + "\n".join(cluster.diagnostics(ns) for ns in release.namespaces)
    return seen


def pss_violations(cluster, namespace: str, name: str, spec: dict) -> str | None:
    """Create a Pod of this spec in `namespace` with dryRun=All (admission runs, nothing is stored);
    the PodSecurity message when refused, else None."""
    spec = json.loads(json.dumps(spec))
    spec.pop("serviceAccountName", None)  # ServiceAccount admission would want the account there
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    try:
        cluster.core.create_namespaced_pod(namespace, body, dry_run="All")
        return None
    except ApiException as exc:
        if exc.status == 403 and "PodSecurity" in exc.body:
            return json.loads(exc.body)["message"]
        raise


def token_client(cluster, namespace: str, service_account: str):
    """An ApiClient authenticated with a bound token of the service account (TokenRequest API)."""
    tr = cluster.core.create_namespaced_service_account_token(service_account, namespace, client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=["https://kubernetes.default.svc.cluster.local"], expiration_seconds=600)))
    conf = client.Configuration()
    conf.host = cluster.api.configuration.host
    conf.ssl_ca_cert = cluster.api.configuration.ssl_ca_cert
    conf.api_key = {"authorization": f"Bearer {tr.status.token}"}
    return client.ApiClient(conf), tr.status.token


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")
