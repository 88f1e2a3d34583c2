"""Names across release names: our objects point at what the official chart really renders.

The umbrella is rendered with the official chart, with `airflow.useStandardNaming` false and
true, for every scenario file with release names of 5 and 40 characters (the longest the
official chart can install) and one that contains `airflow`, and for the minimal scenario
with 30, 41, 45, 46, 53 and 63 characters too (each umbrella render costs about 1.5 s of CPU,
and which objects exist depends on the scenario, their names on the release). Then:
- every RoleBinding subject of ours is a ServiceAccount that is rendered (or named in values);
- every Secret, ConfigMap and ServiceAccount that a pod of ours (workloads, Jobs and the pod
  templates in the ConfigMap) reads is rendered in its namespace or named in the values;
- every object name, ours and the official chart's, is valid for its kind.
A release name that the official chart cannot handle is refused at render by check-values;
the test proves the refusal is right by rendering the official chart alone with the same
name and values and finding the name that Kubernetes would reject. helm itself refuses
release names over 53 characters.
"""

from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import paths
from tests.support.helm import HelmError, is_subchart_object, parse_documents, render_chart, run_helm
from tests.support.k8s import containers, pod_specs
from tests.support.merge import deep_merge
from tests.support.overlays import with_overlays

NAMESPACE = "mlops"
RELEASES = {
    "5": "mlops",
    "30": "r" * 30,
    "40": "r" * 40,
    "41": "r" * 41,
    "45": "r" * 45,
    "46": "r" * 46,
    "53": "r" * 53,
    "63": "r" * 63,
    "airflow": "team-airflow-prod",
}
# Kubernetes name rules by kind: Services are DNS-1035 labels; Jobs and StatefulSets give
# their name to labels (job-name, pod-name), so 63; CronJobs append 11 characters to it.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LIMITS = {"Service": 63, "Job": 63, "StatefulSet": 63, "CronJob": 52}


def name_errors(obj: dict[str, Any]) -> list[str]:
    kind, name = obj["kind"], obj["metadata"]["name"]
    errors = []
    limit = LIMITS.get(kind, 253)
    pattern = DNS_1035 if kind == "Service" else DNS_SUBDOMAIN if limit == 253 else DNS_LABEL
    if len(name) > limit or not pattern.match(name):
        errors.append(f"{kind}/{name}: not a valid {kind} name ({len(name)} characters, limit {limit})")
    for key, value in (obj["metadata"].get("labels") or {}).items():
        if len(str(value)) > 63 or not LABEL_VALUE.match(str(value)):
            errors.append(f"{kind}/{name}: label {key}={value!r} is not a valid label value")
    return errors


def all_strings(tree: Any) -> set[str]:
    if isinstance(tree, dict):
        return set().union(*(all_strings(v) for v in tree.values())) if tree else set()
    if isinstance(tree, list):
        return set().union(*(all_strings(v) for v in tree)) if tree else set()
    return {tree} if isinstance(tree, str) else set()


def values_of(files: list[Path], extra: dict[str, Any]) -> set[str]:
    strings = all_strings(extra)
    for f in files:
        strings |= all_strings(yaml.safe_load(Path(f).read_text()) or {})
    return strings


def pod_references(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every Secret, ConfigMap and ServiceAccount a pod spec needs."""
    refs: set[tuple[str, str]] = set()
    if spec.get("serviceAccountName"):
        refs.add(("ServiceAccount", spec["serviceAccountName"]))
    for s in spec.get("imagePullSecrets") or []:
        refs.add(("Secret", s["name"]))
    for v in spec.get("volumes") or []:
        if "secret" in v and not v["secret"].get("optional"):
            refs.add(("Secret", v["secret"]["secretName"]))
        if "configMap" in v and not v["configMap"].get("optional"):
            refs.add(("ConfigMap", v["configMap"]["name"]))
        for source in (v.get("projected") or {}).get("sources") or []:
            for kind, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                if key in source and not source[key].get("optional"):
                    refs.add((kind, source[key]["name"]))
    for _, c in containers(spec):
        for e in c.get("env") or []:
            src = e.get("valueFrom") or {}
            for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                if key in src and not src[key].get("optional"):
                    refs.add((kind, src[key]["name"]))
        for e in c.get("envFrom") or []:
            for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                if key in e and not e[key].get("optional"):
                    refs.add((kind, e[key]["name"]))
    return refs


def our_pods(objects: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(where, namespace, podSpec) of our workloads, Jobs and the pod templates we ship."""
    found = []
    for obj in objects:
        if is_subchart_object(obj):
            continue
        ns = obj["metadata"].get("namespace", NAMESPACE)
        for where, spec in pod_specs(obj):
            found.append((f"{obj['kind']}/{obj['metadata']['name']} {where}", ns, spec))
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-pod-templates"):
            platform = next(
                json_cfg
                for o in objects
                if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-platform")
                for json_cfg in [yaml.safe_load(o["data"]["platform.json"])]
            )
            for key, text in obj["data"].items():
                pod = yaml.safe_load(text)
                found.append((f"pod template {key}", platform["tasks"]["namespace"], pod["spec"]))
    return found


@functools.cache
def render(values_file: Path, release: str, standard: bool) -> tuple[dict[str, Any], ...] | str:
    """All objects of the umbrella, or helm's error message when it refuses to render."""
    try:
        return tuple(
            render_chart(
                values_files=with_overlays(values_file),
                values={"airflow": {"useStandardNaming": standard}},
                release=release,
                namespace=NAMESPACE,
                include_subchart=True,
                validate=False,
            )
        )
    except HelmError as exc:
        return str(exc)


def official_alone_name_errors(values_file: Path, release: str, standard: bool) -> list[str]:
    """Render the official chart by itself with the umbrella's `airflow:` values; name errors."""
    merged: dict[str, Any] = {}
    for f in [paths.CHART_DIR / "values.yaml", *with_overlays(values_file)]:
        merged = deep_merge(merged, (yaml.safe_load(Path(f).read_text()) or {}).get("airflow") or {})
    merged.pop("enabled", None)
    merged["useStandardNaming"] = standard
    (archive,) = paths.SUBCHART_DIR.glob("airflow-*.tgz")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as tmp:
        yaml.safe_dump(merged, tmp)
        tmp.flush()
        text = run_helm(["template", release, str(archive), "-n", NAMESPACE, "-f", tmp.name]).stdout
    return [e for obj in parse_documents(text) for e in name_errors(obj)]


MINIMAL = paths.CI_VALUES_DIR / "01-minimal-values.yaml"
CASES = [(f, size) for f in paths.values_files() for size in ("5", "40", "airflow")] + [
    (MINIMAL, size) for size in RELEASES if size not in ("5", "40", "airflow")
]


@pytest.mark.parametrize("standard", [False, True], ids=["default-naming", "standard-naming"])
@pytest.mark.parametrize(("values_file", "size"), CASES, ids=[f"{f.name}-{s}" for f, s in CASES])
def test_names_resolve_for_every_release_name(values_file: Path, size: str, standard: bool) -> None:
    release = RELEASES[size]
    result = render(values_file, release, standard)
    if isinstance(result, str):
        if len(release) > 53:
            assert "invalid release name" in result and "53" in result, result
            return
        assert f'release name "{release}"' in result and "Kubernetes allows" in result, result
        # The refusal is right: the official chart alone produces a name Kubernetes rejects.
        assert official_alone_name_errors(values_file, release, standard), (
            f"check-values refused release {release!r} but the official chart alone renders valid names"
        )
        return
    objects = list(result)
    assert len(release) <= 53
    errors = [e for obj in objects for e in name_errors(obj)]
    assert not errors, "\n".join(errors)

    rendered = {
        (o["kind"], o["metadata"].get("namespace", NAMESPACE), o["metadata"]["name"]) for o in objects
    }
    # Names the user supplies: the scenario's values and the chart's defaults (for example the
    # MLflow auth Secret mlflow-auth, which the user creates: values/secrets/production.json).
    named = values_of([paths.CHART_DIR / "values.yaml", *with_overlays(values_file)], {})
    # The ServiceAccount every namespace has; Secrets a Kubernetes controller fills are not ours.
    builtin = {("ServiceAccount", "default")}

    def exists(kind: str, ns: str, name: str) -> bool:
        return (kind, ns, name) in rendered or name in named or (kind, name) in builtin

    problems = []
    for binding in objects:
        if is_subchart_object(binding) or binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        for s in binding.get("subjects") or []:
            if s["kind"] == "ServiceAccount" and not exists("ServiceAccount", s["namespace"], s["name"]):
                problems.append(f"{binding['metadata']['name']} binds ServiceAccount {s['namespace']}/{s['name']}")
    for where, ns, spec in our_pods(objects):
        for kind, name in sorted(pod_references(spec)):
            if not exists(kind, ns, name):
                problems.append(f"{where} reads {kind} {ns}/{name}, which is neither rendered nor in the values")
    assert not problems, "\n".join(problems)


def test_the_name_check_fails_on_a_binding_to_a_missing_account() -> None:
    """The checks above can fail: a binding to an account nothing renders is reported."""
    objects = list(render(MINIMAL, "mlops", False))
    accounts = {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"}
    assert "mlops-airflow-scheduler" in accounts
    assert "mlops-airflow-worker" not in accounts  # LocalExecutor: the official chart renders no worker
    assert name_errors({"kind": "Service", "metadata": {"name": "r" * 53 + "-api-server"}})
    assert not name_errors({"kind": "ServiceAccount", "metadata": {"name": "r" * 53 + "-airflow-scheduler"}})

