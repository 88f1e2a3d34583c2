"""PersistentVolumes for the claims of the kind platform that both nodes must share.

    python scripts/kind/shared_volumes.py [--node-dir DIR --every-claim] <rendered.yaml> [more.yaml ...] > volumes.yaml

kind's default storage (local-path) is one directory on one node: a claim used by CPU steps on
the control plane and GPU steps on the worker needs a volume both nodes see. Both kind nodes
mount the same host directory at /var/local/mlops-shared (scripts/kind/cluster.yaml), so a
hostPath PersistentVolume under it is shared. For every PersistentVolumeClaim of the rendered
chart whose storageClassName is `mlops-shared`, this prints a PersistentVolume bound to exactly
that claim (claimRef), Retain, at /var/local/mlops-shared/<namespace>-<claim>, plus the
StorageClass (no provisioner). One directory name per line goes to stderr: kind-up creates them.

The real-node provider (scripts/kind/realnode.sh) has no storage provisioner either: with
``--every-claim`` every claim of the render gets such a volume (StatefulSet claim templates
included; a claim without a class gets the cluster's default class, ``--default-class``), under
``--node-dir`` (a directory of the node's own filesystem), and no StorageClass is printed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

STORAGE_CLASS = "mlops-shared"
NODE_DIR = "/var/local/mlops-shared"
LABELS = {"app.kubernetes.io/part-of": "airflow-mlops-kind"}


def claims(paths: list[str], every: bool = False, default_class: str = "standard") -> list[dict[str, Any]]:
    found = []
    for p in paths:
        for doc in yaml.safe_load_all(Path(p).read_text()):
            if not isinstance(doc, dict):
                continue
            if doc.get("kind") == "StatefulSet" and every:
                sts = doc["metadata"]
                for template in (doc.get("spec") or {}).get("volumeClaimTemplates") or []:
                    for i in range((doc.get("spec") or {}).get("replicas", 1)):
                        found.append({"metadata": {"name": f"{template['metadata']['name']}-{sts['name']}-{i}",
                                                   "namespace": sts.get("namespace")},
                                      "spec": {**template["spec"]}})
            elif doc.get("kind") == "PersistentVolumeClaim" and (
                every or (doc.get("spec") or {}).get("storageClassName") == STORAGE_CLASS
            ):
                found.append(doc)
    if every:
        for claim in found:
            claim["spec"]["storageClassName"] = claim["spec"].get("storageClassName") or default_class
    return found


def volume_for(claim: dict[str, Any], default_namespace: str, node_dir: str = NODE_DIR) -> tuple[str, dict[str, Any]]:
    meta = claim["metadata"]
    namespace = meta.get("namespace") or default_namespace
    spec = claim["spec"]
    directory = f"{namespace}-{meta['name']}"
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"mlops-shared-{directory}"[:253], "labels": dict(LABELS)},
        "spec": {
            "storageClassName": spec.get("storageClassName") or STORAGE_CLASS,
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteMany"]),
            "persistentVolumeReclaimPolicy": "Retain",
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "claimRef": {"namespace": namespace, "name": meta["name"]},
            "hostPath": {"path": f"{node_dir}/{directory}", "type": "Directory"},
        },
    }
    return directory, pv


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "labels": dict(LABELS)},
        "provisioner": "kubernetes.io/no-provisioner",
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "Immediate",
    }


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--node-dir", default=NODE_DIR)
    parser.add_argument("--every-claim", action="store_true")
    parser.add_argument("--default-class", default="standard")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args(argv)
    if not args.files:
        print(__doc__, file=sys.stderr)
        return 2
    docs = [] if args.every_claim else [storage_class()]
    for claim in claims(args.files, args.every_claim, args.default_class):
        directory, pv = volume_for(claim, default_namespace="mlops", node_dir=args.node_dir)
        docs.append(pv)
        print(directory, file=sys.stderr)
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
