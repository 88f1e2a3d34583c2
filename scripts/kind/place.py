"""Put the pods of a manifest on a node of the caller's choice, with images from a registry.

    python scripts/kind/place.py --image git-server=REF --pull-secret NAME \
        --node-selector KEY=VALUE --toleration KEY=VALUE:EFFECT < manifest.yaml > placed.yaml

kind-up applies scripts/kind/git-server.yaml as it is on kind (the image loaded into the nodes,
imagePullPolicy Never). The real-node provider (scripts/kind/realnode.sh) pipes it through this
first: every pod template (Deployment, StatefulSet, Job, Pod) gets the node selector and the
tolerations, the named containers the registry's image (pulled with the pull secret).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc.get("kind") == "Pod":
        return doc.setdefault("spec", {})
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return doc["spec"]["template"].setdefault("spec", {})
    return None


def place(docs: list[Any], images: dict[str, str], pull_secret: str | None, node_selector: dict[str, str],
          tolerations: list[dict[str, str]]) -> list[Any]:
    for doc in docs:
        spec = pod_spec(doc) if isinstance(doc, dict) else None
        if spec is None:
            continue
        if node_selector:
            spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), **node_selector}
        if tolerations:
            spec["tolerations"] = [*(spec.get("tolerations") or []), *tolerations]
        if pull_secret:
            spec["imagePullSecrets"] = [{"name": pull_secret}]
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            if container["name"] in images:
                container["image"] = images[container["name"]]
                container["imagePullPolicy"] = "IfNotPresent"
    return docs


def _pair(text: str, what: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"place.py: {what} must be KEY=VALUE, got {text!r}")
    return key, value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", action="append", default=[], help="CONTAINER=REF")
    parser.add_argument("--pull-secret")
    parser.add_argument("--node-selector", action="append", default=[], help="KEY=VALUE")
    parser.add_argument("--toleration", action="append", default=[], help="KEY=VALUE:EFFECT")
    args = parser.parse_args(argv)
    images = dict(_pair(i, "--image") for i in args.image)
    selector = dict(_pair(s, "--node-selector") for s in args.node_selector)
    tolerations = []
    for t in args.toleration:
        key, value = _pair(t, "--toleration")
        value, sep, effect = value.partition(":")
        if not sep or not effect:
            raise SystemExit(f"place.py: --toleration must be KEY=VALUE:EFFECT, got {t!r}")
        tolerations.append({"key": key, "operator": "Equal", "value": value, "effect": effect})
    docs = [d for d in yaml.safe_load_all(sys.stdin.read()) if d is not None]
    sys.stdout.write(yaml.safe_dump_all(place(docs, images, args.pull_secret, selector, tolerations), sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
