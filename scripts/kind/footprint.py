"""Sum the resource requests of rendered manifests and check them against the kind budget.

    python scripts/kind/footprint.py <rendered.yaml> [more.yaml ...]

Prints one line per workload (requests x replicas), the fixed cost of kind itself (control
plane, CNI, DNS, ingress controller), the largest task pod of the pod templates (one task at a
time on kind), and the total against the budget of Docker Desktop with 4 CPUs / 8 GB
(override: MLOPS_KIND_BUDGET_CPU, MLOPS_KIND_BUDGET_MEMORY, as Kubernetes quantities).
Exit status 1 when the requests exceed the budget. Jobs (migrations, user creation) run once
and are listed apart, not added to the steady-state total.
"""

from __future__ import annotations

import os
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

_SUFFIX = {
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|)$")

# kind v0.31 system pods (requests as shipped: kube-apiserver 250m, controller-manager 200m,
# scheduler 100m, etcd 100m/100Mi, 2x coredns 100m/70Mi, kindnet 100m/50Mi per node) and the
# ingress-nginx controller (100m/90Mi).
KIND_SYSTEM = {"cpu": Decimal("1.15"), "memory": Decimal(100 + 140 + 100 + 90) * 2**20}
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Job", "CronJob"}


def parse_quantity(value: Any) -> Decimal:
    """A Kubernetes quantity ('250m', '1Gi', 2, '1e3') as a Decimal (cores or bytes)."""
    text = str(value).strip()
    m = _QUANTITY.match(text)
    if not m:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return Decimal(m.group(1)) * _SUFFIX[m.group(2)]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec")


def pod_requests(spec: dict[str, Any]) -> dict[str, Decimal]:
    """Effective pod requests: max(sum of containers, largest init container), per resource."""
    total = {"cpu": Decimal(0), "memory": Decimal(0)}
    for c in spec.get("containers") or []:
        for res in total:
            req = ((c.get("resources") or {}).get("requests") or {}).get(res)
            if req is not None:
                total[res] += parse_quantity(req)
    for c in spec.get("initContainers") or []:
        for res in total:
            req = ((c.get("resources") or {}).get("requests") or {}).get(res)
            if req is not None:
                total[res] = max(total[res], parse_quantity(req))
    return total


def containers_without_requests(spec: dict[str, Any]) -> list[str]:
    return [
        c.get("name", "?")
        for c in (spec.get("containers") or [])
        if not ((c.get("resources") or {}).get("requests") or {})
    ]


def load(paths: list[str]) -> list[dict[str, Any]]:
    objects = []
    for p in paths:
        for doc in yaml.safe_load_all(Path(p).read_text()):
            if isinstance(doc, dict) and doc.get("kind"):
                objects.append(doc)
    return objects


def largest_task_pod(objects: list[dict[str, Any]]) -> tuple[str, dict[str, Decimal]] | None:
    """The pod template (ConfigMap *-pod-templates, one Pod per key) with the largest requests."""
    best = None
    for obj in objects:
        if obj.get("kind") != "ConfigMap" or not obj["metadata"].get("name", "").endswith("pod-templates"):
            continue
        for key, text in (obj.get("data") or {}).items():
            pod = yaml.safe_load(text)
            if not isinstance(pod, dict) or pod.get("kind") != "Pod":
                continue
            req = pod_requests(pod.get("spec") or {})
            if best is None or (req["memory"], req["cpu"]) > (best[1]["memory"], best[1]["cpu"]):
                best = (key, req)
    return best


def fmt(req: dict[str, Decimal]) -> str:
    return f"{req['cpu'] * 1000:>7.0f}m {req['memory'] / 2**20:>7.0f}Mi"


Requests = dict[str, Decimal]
Rows = list[tuple[str, Requests]]


def tally(objects: list[dict[str, Any]]) -> tuple[Rows, Rows, list[str]]:
    """(workloads with their requests x replicas, Jobs with their requests, containers that set
    no requests) of the pod-bearing objects."""
    workloads: Rows = []
    jobs: Rows = []
    unset: list[str] = []
    for obj in objects:
        if obj.get("kind") not in POD_KINDS:
            continue
        spec = pod_spec(obj)
        if spec is None:
            continue
        req = pod_requests(spec)
        name = f"{obj['kind']}/{obj['metadata'].get('name')}"
        unset.extend(f"{name}[{c}]" for c in containers_without_requests(spec))
        if obj["kind"] in {"Job", "CronJob"}:
            jobs.append((name, req))
            continue
        replicas = int((obj.get("spec") or {}).get("replicas", 1) or 0)
        workloads.append((f"{name} x{replicas}", {k: v * replicas for k, v in req.items()}))
    return workloads, jobs, unset


def print_table(objects: list[dict[str, Any]], budget: Requests) -> Requests:
    """Print the requests of every workload, the fixed kind system pods, the largest task pod and
    the Jobs (not counted); return the total."""
    workloads, jobs, unset = tally(objects)
    steady = {"cpu": Decimal(0), "memory": Decimal(0)}
    for _, total in workloads:
        for k in steady:
            steady[k] += total[k]
    print("kind footprint: resource requests (cpu, memory)")
    for name, req in sorted(workloads):
        print(f"  {fmt(req)}  {name}")
    print(f"  {fmt(KIND_SYSTEM)}  kind system pods + ingress-nginx (fixed)")
    grand = {k: steady[k] + KIND_SYSTEM[k] for k in steady}
    task = largest_task_pod(objects)
    if task:
        print(f"  {fmt(task[1])}  largest task pod (pod template {task[0]}, one at a time)")
        grand = {k: grand[k] + task[1][k] for k in grand}
    for name, req in sorted(jobs):
        print(f"  {fmt(req)}  {name} (runs once, not counted)")
    print(f"  {fmt(grand)}  TOTAL requests")
    if unset:
        print(
            f"  note: {len(unset)} container(s) set no requests, so their usage is not in this sum: "
            + ", ".join(unset)
        )
    print(f"  {fmt(budget)}  budget (Docker Desktop 4 CPUs / 8 GB)")
    return grand


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    budget = {
        "cpu": parse_quantity(os.environ.get("MLOPS_KIND_BUDGET_CPU", "4")),
        "memory": parse_quantity(os.environ.get("MLOPS_KIND_BUDGET_MEMORY", "8Gi")),
    }
    grand = print_table(load(argv), budget)
    over = [k for k in grand if grand[k] > budget[k]]
    if over:
        print(f"kind footprint: requests exceed the budget for {', '.join(over)}", file=sys.stderr)
        return 1
    print(
        f"kind footprint: fits ({grand['cpu'] / budget['cpu']:.0%} of the CPU, "
        f"{grand['memory'] / budget['memory']:.0%} of the memory budget)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
