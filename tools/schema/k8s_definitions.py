"""Kubernetes sub-schemas of values.schema.json, generated from kubernetes-validate's strict schemas.

The pod templates are ConfigMap data: the API server never validates them, so the chart must.
Every Kubernetes object a value passes into a pod (affinity, tolerations, resources, security
contexts, env, label selectors, NetworkPolicy peers) is typed in values.schema.json by the
strict (additionalProperties: false) schema of the oldest Kubernetes version we support, so a
misspelt key is refused at render instead of being dropped. A few rules the OpenAPI schema does
not carry are added (enums of operators and effects, label key/value, quantity and resource-name
patterns).

    python tools/schema/k8s_definitions.py           # rewrite "definitions" in files/values.schema.json
    python tools/schema/k8s_definitions.py --check   # exit 1 when they differ (tests run this)
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "charts" / "airflow-mlops" / "files" / "values.schema.json"
KUBE_VERSION = "1.33.0"  # the oldest version the chart supports (Chart.yaml kubeVersion)

ROOTS = [
    "io.k8s.api.core.v1.Affinity",
    "io.k8s.api.core.v1.Toleration",
    "io.k8s.api.core.v1.PodSecurityContext",
    "io.k8s.api.core.v1.SecurityContext",
    "io.k8s.api.core.v1.ResourceRequirements",
    "io.k8s.api.core.v1.EnvVar",
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.networking.v1.NetworkPolicyPeer",
    "io.k8s.api.networking.v1.NetworkPolicyEgressRule",
]

# Patterns shared with the hand-written part of values.schema.json ("definitions" below).
DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN = rf"{DNS_LABEL}(\.{DNS_LABEL})*"
LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = rf"^({DNS_SUBDOMAIN}/)?{LABEL_NAME}$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# A non-negative Kubernetes quantity: 500m, 2, 1.5, 4Gi, 100M, 1e3 (no sign, no space, no unit words).
QUANTITY = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[KMGTPE]i|[mkMGTPE])?$"
RESOURCE_NAME = rf"^({DNS_SUBDOMAIN}/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# What each rule allows, in words: the refusal's sentence (templates/checks/_schema.tpl).
LABEL_KEY_WORDS = (
    "an optional DNS subdomain and '/', then a name of at most 63 letters, digits, '-', '_' or '.' "
    "that starts and ends with a letter or digit (for example kubernetes.io/hostname)"
)
WORDS = {
    "quantity": "a non-negative Kubernetes quantity: a number with an optional suffix m, k, M, G, T, P, E "
    "or Ki, Mi, Gi, Ti, Pi, Ei and no spaces (for example 500m, 2, 1.5, 512Mi, 4Gi)",
    "toleration_key": f"empty, or a label key: {LABEL_KEY_WORDS}",
    "label_key": f"a label key: {LABEL_KEY_WORDS}",
    "label_value": "a label value: empty, or at most 63 letters, digits, '-', '_' and '.', starting and "
    "ending with a letter or digit",
    "match_labels": f"label keys ({LABEL_KEY_WORDS}) with label values as strings",
    "resource_names": "resource names such as cpu, memory, ephemeral-storage or nvidia.com/gpu (an optional "
    "DNS subdomain and '/', then letters, digits, '-', '_' and '.')",
    "env_name": "an environment variable name: letters, digits, '_', '-' and '.', not starting with a digit",
    "int_or_string": "a whole number or a string (a port: a number such as 8080 or a name such as http)",
}

PREFIXES = {
    "io.k8s.api.": "",
    "io.k8s.apimachinery.pkg.apis.meta.v1.": "meta.v1.",
    "io.k8s.apimachinery.pkg.api.resource.": "",
    "io.k8s.apimachinery.pkg.util.intstr.": "",
}


def short(name: str) -> str:
    for prefix, repl in PREFIXES.items():
        if name.startswith(prefix):
            return "k8s." + repl + name[len(prefix) :]
    return "k8s." + name


def source_definitions() -> dict[str, Any]:
    import kubernetes_validate

    path = (
        Path(kubernetes_validate.__file__).parent
        / "kubernetes-json-schema"
        / f"v{KUBE_VERSION}-local-strict"
        / "_definitions.json"
    )
    return json.loads(path.read_text())["$defs"]


def _clean(node: Any, refs: set[str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "description" and isinstance(value, str) or key.startswith("x-kubernetes-"):
                continue
            if key == "format":
                continue
            if key == "$ref":
                target = value.rsplit("/", 1)[-1]
                refs.add(target)
                out[key] = f"#/definitions/{short(target)}"
                continue
            out[key] = _clean(value, refs)
        return out
    if isinstance(node, list):
        return [_clean(v, refs) for v in node]
    return node


def _tighten(defs: dict[str, Any]) -> None:
    """Rules the OpenAPI schema does not carry (the API server checks them in code)."""
    defs[short("io.k8s.apimachinery.pkg.api.resource.Quantity")] = {
        "type": ["string", "number"],
        "pattern": QUANTITY,
        "patternErrorMessage": WORDS["quantity"],
        "minimum": 0,
    }
    defs[short("io.k8s.apimachinery.pkg.util.intstr.IntOrString")]["errorMessage"] = WORDS["int_or_string"]
    tol = defs["k8s.core.v1.Toleration"]["properties"]
    tol["operator"]["enum"] = ["Exists", "Equal", None]
    tol["effect"]["enum"] = ["", "NoSchedule", "PreferNoSchedule", "NoExecute", None]
    tol["key"]["pattern"] = rf"^(|({DNS_SUBDOMAIN}/)?{LABEL_NAME})$"
    tol["key"]["patternErrorMessage"] = WORDS["toleration_key"]
    nsr = defs["k8s.core.v1.NodeSelectorRequirement"]["properties"]
    nsr["operator"]["enum"] = ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    nsr["key"]["pattern"] = LABEL_KEY
    nsr["key"]["patternErrorMessage"] = WORDS["label_key"]
    lsr = defs["k8s.meta.v1.LabelSelectorRequirement"]["properties"]
    lsr["operator"]["enum"] = ["In", "NotIn", "Exists", "DoesNotExist"]
    lsr["key"]["pattern"] = LABEL_KEY
    lsr["key"]["patternErrorMessage"] = WORDS["label_key"]
    ml = defs["k8s.meta.v1.LabelSelector"]["properties"]["matchLabels"]
    # patternProperties + additionalProperties false: an unknown key is refused naming the map
    ml["patternProperties"] = {
        LABEL_KEY: {"type": "string", "pattern": LABEL_VALUE, "patternErrorMessage": WORDS["label_value"]}
    }
    ml["additionalProperties"] = False
    ml["errorMessage"] = WORDS["match_labels"]
    rr = defs["k8s.core.v1.ResourceRequirements"]["properties"]
    for key in ("requests", "limits"):
        rr[key]["patternProperties"] = {RESOURCE_NAME: rr[key].pop("additionalProperties")}
        rr[key]["additionalProperties"] = False
        rr[key]["errorMessage"] = WORDS["resource_names"]
    defs["k8s.core.v1.EnvVar"]["properties"]["name"]["pattern"] = ENV_NAME
    defs["k8s.core.v1.EnvVar"]["properties"]["name"]["patternErrorMessage"] = WORDS["env_name"]
    for key in ("io.k8s.api.core.v1.PodSecurityContext", "io.k8s.api.core.v1.SecurityContext"):
        props = defs[short(key)]["properties"]
        for field in ("runAsUser", "runAsGroup"):
            props[field]["minimum"] = 0
    seccomp = defs["k8s.core.v1.SeccompProfile"]["properties"]["type"]
    seccomp["enum"] = ["RuntimeDefault", "Localhost", "Unconfined"]


def generate() -> dict[str, Any]:
    source = source_definitions()
    defs: dict[str, Any] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if short(name) in defs:
            continue
        refs: set[str] = set()
        defs[short(name)] = _clean(copy.deepcopy(source[name]), refs)
        todo.extend(sorted(refs))
    _tighten(defs)
    return dict(sorted(defs.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when values.schema.json differs")
    args = parser.parse_args()
    schema = json.loads(SCHEMA_FILE.read_text())
    defs = schema.setdefault("definitions", {})
    wanted = generate()
    current = {k: v for k, v in defs.items() if k.startswith("k8s.")}
    if args.check:
        if current != wanted:
            print(
                f"{SCHEMA_FILE.relative_to(REPO)}: the k8s.* definitions are out of date: "
                "run .venv/bin/python tools/schema/k8s_definitions.py",
                file=sys.stderr,
            )
            return 1
        return 0
    own = {k: v for k, v in defs.items() if not k.startswith("k8s.")}
    schema["definitions"] = {**own, **wanted}
    SCHEMA_FILE.write_text(json.dumps(schema, indent=2) + "\n")
    print(f"{SCHEMA_FILE.relative_to(REPO)}: {len(wanted)} k8s.* definitions (Kubernetes {KUBE_VERSION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
