"""The GitOps manifests of values/gitops/ and the schemas of their kinds (Argo CD and Flux CRDs).

`crd_schemas()` reads the CustomResourceDefinitions from paths.GITOPS_CRDS_DIR and returns one
strict JSON schema per (apiVersion, kind): the CRD's openAPIV3Schema with
`additionalProperties: false` wherever the schema lists properties and does not preserve
unknown fields, which is what the API server does with `fieldValidation=Strict` (the default of
`kubectl apply --server-side`). `manifests()` lists every Kubernetes object under
values/gitops/ (the values overlays there are not objects and are skipped).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from tests.support import paths

CRDS_MISSING = (
    "the Argo CD / Flux CustomResourceDefinitions are not at {dir}: put the gitops-crds reference "
    "directory there (CI has it at ../shared/reference/gitops-crds beside the clone) or set "
    "MLOPS_GITOPS_CRDS_DIR"
)


def require_crds_dir() -> Path:
    d = paths.GITOPS_CRDS_DIR
    if not d.is_dir() or not any(d.glob("*.yaml")):
        raise AssertionError(CRDS_MISSING.format(dir=d))
    return d


@functools.cache
def crd_documents() -> tuple[dict[str, Any], ...]:
    docs = []
    for f in sorted(require_crds_dir().glob("*.yaml")):
        docs += [
            d for d in yaml.safe_load_all(f.read_text()) if d and d.get("kind") == "CustomResourceDefinition"
        ]
    return tuple(docs)


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    s = copy.copy(schema)
    if "properties" in s:
        s["properties"] = {k: _strict(v) for k, v in s["properties"].items()}
        if "additionalProperties" not in s and not s.get("x-kubernetes-preserve-unknown-fields"):
            s["additionalProperties"] = False
    if isinstance(s.get("additionalProperties"), dict):
        s["additionalProperties"] = _strict(s["additionalProperties"])
    if isinstance(s.get("items"), dict):
        s["items"] = _strict(s["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in s:
            s[key] = [_strict(x) for x in s[key]]
    return s


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """{(apiVersion, kind): strict schema} for every served version of every CRD."""
    out = {}
    for crd in crd_documents():
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            if not v.get("served", True):
                continue
            schema = _strict(v["schema"]["openAPIV3Schema"])
            # The API server checks these itself (ObjectMeta); the CRDs only say "object".
            schema.setdefault("required", [])
            out[(f"{group}/{v['name']}", kind)] = schema
    return out


def manifest_files() -> list[Path]:
    return sorted(p for p in paths.GITOPS_DIR.rglob("*.yaml")) + sorted(
        p for p in paths.SECRETS_CATALOG_DIR.rglob("*.yaml")
    )


def manifests(files: list[Path] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """(file, object) for every Kubernetes object (apiVersion + kind) in the GitOps folders."""
    out = []
    for f in files or manifest_files():
        for doc in yaml.safe_load_all(f.read_text()):
            if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc:
                out.append((f, doc))
    return out


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [o for _, o in manifests() if o["kind"] == kind]
