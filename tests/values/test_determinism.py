"""Two renders with the same inputs are byte-identical (GitOps: no change on every sync).

Renders run helm directly, twice, never through the render cache (tests/support/helm.py): for
the chart defaults, every values file of the repository (values/*.yaml, ci/*-values.yaml) and
each environment under the GitOps overlays (values/gitops/{argocd,flux}/values.yaml). The
official chart generates a random Fernet/API/JWT key, Redis password and broker URL for every
Secret it is not given the name of; the chart's defaults name them (values.yaml) and the
guide lists them (values/README.md). Nothing may depend on `lookup` or on cluster state either.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from tests.support import paths
from tests.support.helm import chart_path, run_helm
from tests.support.overlays import with_overlays

ARGO = paths.GITOPS_DIR / "argocd" / "values.yaml"
FLUX = paths.GITOPS_DIR / "flux" / "values.yaml"
PRODUCTION = paths.VALUES_DIR / "production.example.yaml"


def cases() -> list[tuple[str, list[Path]]]:
    out: list[tuple[str, list[Path]]] = [("chart defaults", [])]
    out += [(f.relative_to(paths.REPO).as_posix(), with_overlays(f)) for f in paths.values_files()]
    for overlay in (ARGO, FLUX):
        name = overlay.parent.name
        out.append((f"chart defaults + {name}", [overlay]))
        out.append((f"production.example + {name}", [PRODUCTION, overlay]))
    return out


def render_uncached(files: list[Path]) -> str:
    args = ["template", "mlops", str(chart_path()), "--namespace", "mlops"]
    for f in files:
        args += ["--values", str(f)]
    return run_helm(args).stdout


def documents(text: str) -> dict[str, str]:
    """{'<source> <kind>/<name>': document text}, for a readable report."""
    out = {}
    for doc in text.split("\n---"):
        source = re.search(r"^# Source: (.+)$", doc, re.M)
        kind = re.search(r"^kind: (\S+)$", doc, re.M)
        name = re.search(r"^  name: (\S+)$", doc, re.M)
        if kind and name:
            out[f"{source.group(1) if source else '?'} {kind.group(1)}/{name.group(1)}"] = doc
    return out


@pytest.mark.parametrize("case", cases(), ids=lambda c: c[0])
def test_two_renders_are_identical(case: tuple[str, list[Path]]) -> None:
    _, files = case
    first, second = render_uncached(files), render_uncached(files)
    if first == second:
        return
    a, b = documents(first), documents(second)
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    detail = "".join(
        difflib.unified_diff(
            a.get(differ[0], "").splitlines(True), b.get(differ[0], "").splitlines(True), n=1
        )
    )
    pytest.fail(f"{len(differ)} objects differ between two renders: {differ}\nfirst:\n{detail}")


def test_our_templates_use_no_randomness_or_cluster_state() -> None:
    """Our own templates: no lookup, random values, dates or UUIDs (the official chart's random
    Secrets are avoided by naming them in values.yaml)."""
    pattern = re.compile(
        r"\b(lookup|randAlphaNum|randAlpha|randNumeric|randAscii|randBytes|uuidv4|now|genCA|genPrivateKey|genSelfSignedCert|genSignedCert)\b"
    )
    # The allowance, exactly: the NFS PV template reads the live PV and its claim (these two calls,
    # nothing else) to clear a stale claimRef.uid that the PV controller left on a Released volume
    # (a helm-only benefit, tests/cluster/test_platform.py). Without a cluster (helm template, Argo
    # CD, Flux) lookup returns nothing and the render is the same as without the calls
    # (test_the_allowed_lookup_changes_no_render_without_a_cluster); GitOps users clear the uid by
    # hand (values/README.md, "Re-installing over kept data").
    allowed_lookups = {
        ("charts/airflow-mlops/templates/storage/storage-datasets-pv.yaml", '{{- $live := lookup "v1" "PersistentVolume" "" $pvName }}'),
        ("charts/airflow-mlops/templates/storage/storage-datasets-pv.yaml", '{{- $claim := lookup "v1" "PersistentVolumeClaim" $claimNs $claimName }}'),
    }
    found, lookups = [], set()
    for f in sorted((paths.CHART_DIR / "templates").rglob("*")):
        if f.is_file():
            rel = f.relative_to(paths.REPO).as_posix()
            for n, line in enumerate(f.read_text().splitlines(), 1):
                for m in re.finditer(r"\{\{.*?\}\}", line):
                    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', m.group(0))  # not inside strings
                    if (rel, m.group(0).strip()) in allowed_lookups:
                        lookups.add((rel, m.group(0).strip()))
                        code = re.sub(r"\blookup\b", "", code)
                    if pattern.search(code):
                        found.append(f"{rel}:{n}: {m.group(0)}")
    assert not found, "\n".join(found)
    assert lookups == allowed_lookups, f"allowed lookups no longer in the templates: {allowed_lookups - lookups}"


def test_the_allowed_lookup_changes_no_render_without_a_cluster() -> None:
    """helm template (what Argo CD and Flux run): the NFS PV's claimRef is the plain pre-binding by
    name, without uid/resourceVersion, the same in every render."""
    from tests.support.helm import find, render_chart

    values = {"storage": {"nfs": {"enabled": True, "server": "nfs.example.com", "path": "/exports/datasets"}}}
    (pv,) = find(render_chart(values=values, show_only=["templates/storage/storage-datasets-pv.yaml"]), "PersistentVolume")
    assert pv["spec"]["claimRef"] == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": "airflow-mlops",
        "name": "test-airflow-mlops-datasets",
    }
