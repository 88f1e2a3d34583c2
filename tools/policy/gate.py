"""Policy gate of `make lint`: checkov and kube-score on the full render and on each pod template.

For every values file in VALUES_FILES the whole umbrella is rendered with the pinned helm
(release `mlops`, namespace `mlops`). Objects are split by their `# Source:` line into ours
(`airflow-mlops/templates/...`) and the official chart's (`airflow-mlops/charts/airflow/...`).
The pod templates shipped in ConfigMaps (every `<profile>.yaml` Pod of the pod-templates
ConfigMap, `serving-deployment.yaml` of the platform ConfigMap) are extracted and scored as
objects of their own, in the namespace they run in (platform.json `tasks.namespace` /
`serving.namespace`), because the API server never sees them before a task runs.

Both tools run once over the whole tree (kube-score relates objects to each other: Services
to pods, NetworkPolicies to pods). A finding on one of our objects fails the gate unless an
entry of tools/policy/allowlist.yaml (tool, check, objects, why) covers it; an allow-list
entry that covers nothing fails too (stale entries hide regressions). The official chart's
findings are counted and reported, never gated.

    .venv-policy/bin/python tools/policy/gate.py [--verbose] [--keep DIR]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "airflow-mlops"
ALLOWLIST = Path(__file__).with_name("allowlist.yaml")
VALUES_FILES = ["values/production.example.yaml", "values/kind.yaml"]
# What kind-up passes on the command line (the git server's host key: only its format matters here).
EXTRA_ARGS = {
    "values/kind.yaml": [
        "--set", "airflow.dags.gitSync.knownHosts=git-server.mlops.svc.cluster.local ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    ],
}
RELEASE = NAMESPACE = "mlops"
OFFICIAL_PREFIX = "airflow-mlops/charts/"
# kube-score grades: 1 critical, 5 warning, 7 almost ok, 10 ok.
KUBE_SCORE_OK = 10


def tool(name: str) -> str:
    for d in (REPO / "bin", Path(sys.executable).parent):
        if (d / name).is_file():
            return str(d / name)
    found = shutil.which(name)
    if not found:
        sys.exit(f"policy: {name} not found (make lint builds it: {name} in ./bin or the policy venv)")
    return found


def render(values_file: str) -> list[tuple[str, dict[str, Any]]]:
    """(source, object) of every object of the umbrella render."""
    out = subprocess.run(
        [tool("helm"), "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--values", values_file,
         *EXTRA_ARGS.get(values_file, [])],
        cwd=REPO, capture_output=True, text=True,
    )
    if out.returncode != 0:
        sys.exit(f"policy: helm template -f {values_file} failed:\n{out.stderr}")
    objects = []
    for doc in re.split(r"^---\s*$", out.stdout, flags=re.M):
        m = re.search(r"^# Source: (\S+)", doc, flags=re.M)
        obj = yaml.safe_load(doc)
        if m and isinstance(obj, dict) and obj.get("kind"):
            objects.append((m.group(1), obj))
    return objects


def pod_templates(objects: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The Pods / Deployments our ConfigMaps ship for the DAGs, in the namespace they run in."""
    platform: dict[str, Any] = {}
    shipped = []
    for source, obj in objects:
        if obj["kind"] != "ConfigMap" or source.startswith(OFFICIAL_PREFIX):
            continue
        for key, text in (obj.get("data") or {}).items():
            if key == "platform.json":
                platform = json.loads(text)
            elif key.endswith(".yaml"):
                doc = yaml.safe_load(text)
                if isinstance(doc, dict) and doc.get("kind") in ("Pod", "Deployment"):
                    shipped.append(doc)
    for doc in shipped:
        ns = (platform.get("tasks") or {}).get("namespace") if doc["kind"] == "Pod" else None
        ns = ns or (platform.get("serving") or {}).get("namespace") or platform.get("namespace") or NAMESPACE
        doc["metadata"]["namespace"] = ns
        # Marks the scored object as a pod template (object id `PodTemplate:<kind>/<name>`).
        doc["metadata"].setdefault("annotations", {})["mlops.policy/pod-template"] = "true"
    return shipped


def object_id(kind: str, name: str, annotations: dict[str, Any] | None) -> str:
    prefix = "PodTemplate:" if (annotations or {}).get("mlops.policy/pod-template") else ""
    return f"{prefix}{kind}/{name}"


def write_tree(root: Path) -> dict[str, str]:
    """Render every values file into root/<env>/{ours,official}/NNN.yaml; {file: owner}."""
    owners: dict[str, str] = {}
    for values_file in VALUES_FILES:
        env = Path(values_file).stem.replace(".", "-")
        objects = render(values_file)
        groups = {
            "ours": [o for s, o in objects if not s.startswith(OFFICIAL_PREFIX)] + pod_templates(objects),
            "official": [o for s, o in objects if s.startswith(OFFICIAL_PREFIX)],
        }
        for owner, objs in groups.items():
            d = root / env / owner
            d.mkdir(parents=True)
            for i, obj in enumerate(objs):
                obj["metadata"].setdefault("namespace", NAMESPACE)
                path = d / f"{i:03d}-{obj['kind'].lower()}.yaml"
                path.write_text(yaml.safe_dump(obj, sort_keys=False))
                owners[str(path)] = f"{owner}:{env}"
    return owners


def owner_of(path: str, root: Path, owners: dict[str, str]) -> str:
    p = Path(path)
    if not p.is_absolute():
        p = root / path.lstrip("/")
    return owners.get(str(p), "unknown").split(":")[0]


def run_checkov(root: Path, owners: dict[str, str]) -> list[dict[str, str]]:
    out = subprocess.run(
        [tool("checkov"), "--directory", str(root), "--framework", "kubernetes", "--output", "json",
         "--quiet", "--compact", "--skip-download"],
        cwd=root, capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    if out.returncode not in (0, 1) or not out.stdout.strip().startswith(("{", "[")):
        sys.exit(f"policy: checkov failed (exit {out.returncode}):\n{out.stderr[-3000:]}{out.stdout[-2000:]}")
    reports = json.loads(out.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    findings = []
    for report in reports:
        for f in (report.get("results") or {}).get("failed_checks") or []:
            kind, _, rest = f["resource"].partition(".")
            name = rest.split(".", 1)[1] if "." in rest else rest
            path = f.get("file_abs_path") or f["file_path"]
            doc = yaml.safe_load(Path(path if Path(path).is_absolute() else root / path.lstrip("/")).read_text())
            findings.append({
                "tool": "checkov",
                "check": f["check_id"],
                "title": f.get("check_name", ""),
                "object": object_id(kind, name, doc["metadata"].get("annotations")),
                "owner": owner_of(path, root, owners),
                "file": path,
            })
    return findings


def run_kube_score(root: Path, owners: dict[str, str]) -> list[dict[str, str]]:
    files = sorted(owners)
    out = subprocess.run([tool("kube-score"), "score", "--output-format", "json", *files],
                         cwd=root, capture_output=True, text=True)
    if not out.stdout.strip().startswith("["):
        sys.exit(f"policy: kube-score failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    findings = []
    for obj in json.loads(out.stdout):
        meta = obj.get("object_meta") or {}
        oid = object_id(obj["type_meta"]["kind"], meta.get("name", ""), meta.get("annotations"))
        for c in obj.get("checks") or []:
            if c.get("skipped") or c.get("grade", KUBE_SCORE_OK) >= KUBE_SCORE_OK:
                continue
            findings.append({
                "tool": "kube-score",
                "check": c["check"]["id"],
                "title": "; ".join(x.get("summary", "") for x in c.get("comments") or []) or c["check"]["name"],
                "object": oid,
                "owner": owner_of(obj.get("file_name", ""), root, owners),
                "file": obj.get("file_name", ""),
            })
    return findings


def load_allowlist() -> list[dict[str, Any]]:
    entries = yaml.safe_load(ALLOWLIST.read_text()) or []
    for i, e in enumerate(entries):
        missing = {"tool", "check", "objects", "why"} - set(e)
        if missing or not str(e.get("why", "")).strip():
            sys.exit(f"policy: {ALLOWLIST.name} entry {i + 1}: needs tool, check, objects and a non-empty why")
    return entries


def allowed(finding: dict[str, str], entry: dict[str, Any]) -> bool:
    return (
        entry["tool"] == finding["tool"]
        and entry["check"] == finding["check"]
        and any(fnmatch.fnmatchcase(finding["object"], pat) for pat in entry["objects"])
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verbose", action="store_true", help="list every finding, the allowed ones too")
    ap.add_argument("--keep", type=Path, help="write the scored objects into this directory and keep them")
    ap.add_argument("--no-allowlist", action="store_true", help="gate without the allow-list (counts before review)")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="mlops-policy-")) if not args.keep else args.keep.resolve()
    if args.keep and root.exists():
        shutil.rmtree(root)
    try:
        owners = write_tree(root)
        findings = run_checkov(root, owners) + run_kube_score(root, owners)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    entries = [] if args.no_allowlist else load_allowlist()

    # One finding per (tool, check, object): the same object rendered for two values files counts once.
    ours: dict[tuple[str, str, str], dict[str, str]] = {}
    official: Counter[tuple[str, str]] = Counter()
    for f in findings:
        if f["owner"] == "official":
            official[(f["tool"], f["check"])] += 1
        elif f["owner"] == "ours":
            ours.setdefault((f["tool"], f["check"], f["object"]), f)
        else:
            sys.exit(f"policy: finding on an unknown file {f['file']}")

    used = [0] * len(entries)
    gated, accepted = [], []
    for _key, f in sorted(ours.items()):
        hit = next((i for i, e in enumerate(entries) if allowed(f, e)), None)
        if hit is None:
            gated.append(f)
        else:
            used[hit] += 1
            accepted.append(f)

    per_tool = Counter(f["tool"] for f in ours.values())
    print(f"policy: rendered {', '.join(VALUES_FILES)}; our objects + pod templates scored by checkov and kube-score")
    for t in ("checkov", "kube-score"):
        n_acc = sum(1 for f in accepted if f["tool"] == t)
        print(f"policy: {t:10s} our findings: {per_tool[t]} ({n_acc} in the allow-list, {per_tool[t] - n_acc} not)")
    off_tool = Counter()
    for (t, _), n in official.items():
        off_tool[t] += n
    print(f"policy: official chart (reported, not gated): checkov {off_tool['checkov']}, kube-score {off_tool['kube-score']} findings")
    if args.verbose:
        for (t, c), n in sorted(official.items()):
            print(f"  official  {t:10s} {c:45s} x{n}")
        for f in accepted:
            print(f"  allowed   {f['tool']:10s} {f['check']:45s} {f['object']}")
    for f in gated:
        print(f"policy: FINDING {f['tool']} {f['check']} on {f['object']}: {f['title']}", file=sys.stderr)
    stale = [e for e, n in zip(entries, used, strict=True) if n == 0]
    for e in stale:
        print(f"policy: STALE allow-list entry {e['tool']} {e['check']} {e['objects']}: covers no finding "
              f"(remove it from {ALLOWLIST.relative_to(REPO)})", file=sys.stderr)
    if gated or stale:
        print(f"policy: {len(gated)} finding(s) on our objects outside {ALLOWLIST.relative_to(REPO)}, "
              f"{len(stale)} stale entr(ies)", file=sys.stderr)
        return 1
    print("policy: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
