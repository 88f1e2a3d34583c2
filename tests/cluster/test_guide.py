"""The production guide (values/README.md) run from its own text against the control plane.

Every block marked `<!-- guide-step: NAME -->` is extracted from the guide and run as written, with
bash, in a copy of the checkout's layout where `values/production.yaml` is the production example
(the guide's first instruction), with the real pinned kubectl and helm (`make cluster-tools`
builds kubectl v1.35.4 like the control-plane binaries). What only an operator has is given the
way the guide asks for it: the `read -rsp` prompts get their answers on stdin, `ssh-keyscan` of
the (unreachable) git host is a stand-in printing a host key, and the TLS Secrets cert-manager
would make are created as the prose says. The cluster administrator's part (prerequisites: GPU
and CPU nodes, volumes of the storage class) is prepared as tests/cluster/test_platform.py does.
The install must become healthy: workloads available, hook Jobs complete, claims Bound.

Uses the namespaces of the guide (mlops, mlops-jobs, mlops-serving) and removes the release, namespaces and
volumes at the end, so tests/cluster/test_platform.py can install there afterwards.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from tests.cluster import platform_release as pf
from tests.support.guide import guide_steps
from tests.support.paths import REPO

STEPS = ("namespaces", "secrets", "external-secrets", "check-secrets", "install")
NAMESPACES = ("mlops", "mlops-jobs", "mlops-serving")
CPU_NODES = ("kwok-cpu-0", "kwok-cpu-1")
READ_RE = re.compile(r"read -rsp '[^']*' (\w+)")
# Answers to the guide's prompts (placeholders: kwok runs nothing that would use them).
ANSWERS = {
    "AIRFLOW_METADATA_CONNECTION": "postgresql://airflow:guide-test@postgres.example.com:5432/airflow",
    "MLFLOW_DB_URI": "postgresql://mlflow:guide-test@postgres.example.com:5432/mlflow",
    "MLFLOW_S3_ACCESS_KEY_ID": "guide-test-key-id",
    "MLFLOW_S3_SECRET_ACCESS_KEY": "guide-test-secret-key",
    "NEXUS_TOKEN": "guide-test-token",
    "MLFLOW_AUTH_USERNAME": "mlflow-admin",
    "MLFLOW_AUTH_PASSWORD": "guide-test-mlflow-password",
    "SERVING_PASSWORD": "guide-test-serving-password",
}


def test_the_guide_marks_its_steps() -> None:
    steps = guide_steps()
    assert list(steps)[: len(STEPS)] == list(STEPS), f"guide steps: {list(steps)}"
    for name in STEPS:
        assert "kubectl" in steps[name] or "helm" in steps[name] or "scripts/" in steps[name], name


def workdir(tmp: Path) -> Path:
    """The checkout as the guide's reader has it: charts/, scripts/, values/ with production.yaml."""
    root = tmp / "checkout"
    (root / "values").mkdir(parents=True)
    for name in ("charts", "scripts"):
        (root / name).symlink_to(REPO / name)
    for item in (REPO / "values").iterdir():
        (root / "values" / item.name).symlink_to(item)
    shutil.copy(REPO / "values" / "production.example.yaml", root / "values" / "production.yaml")
    return root


def stand_in_bin(tmp: Path) -> Path:
    """ssh-keyscan of git.example.com (not reachable here): a host key made for the test."""
    bindir = tmp / "stand-in-bin"
    bindir.mkdir()
    key = tmp / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = key.with_suffix(".pub").read_text().split()
    script = bindir / "ssh-keyscan"
    script.write_text(
        "#!/usr/bin/env bash\n# stand-in for the unreachable git host of the guide (tests/cluster/test_guide.py)\n"
        f'host="${{*: -1}}"\necho "$host {pub[0]} {pub[1]}"\n'
    )
    script.chmod(0o755)
    return bindir


def run_step(cluster, name: str, script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    stdin = "".join(ANSWERS[var] + "\n" for var in READ_RE.findall(script))
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, input=stdin, text=True,
        capture_output=True, timeout=1200,
    )
    if proc.returncode != 0:
        diag = "\n".join(cluster.diagnostics(ns) for ns in NAMESPACES)
        pytest.fail(f"guide step {name!r} exited {proc.returncode}:\n{script}\n--- stdout\n{proc.stdout}\n"
                    f"--- stderr\n{proc.stderr}\n{diag}")
    for secret in ANSWERS.values():
        assert secret not in proc.stdout + proc.stderr, f"step {name!r} printed an answer"
    return proc


def test_the_guide_installs_a_healthy_platform(cluster, cluster_report, tmp_path) -> None:
    steps = guide_steps()
    root = workdir(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env = cluster.env()
    env.update(HOME=str(home), PATH=f"{stand_in_bin(tmp_path)}:{REPO / 'bin'}:{env['PATH']}")
    env.pop("KUBECTL", None)
    assert shutil.which("kubectl", path=env["PATH"]) == str(REPO / "bin" / "kubectl"), (
        "kubectl v1.35.4 is missing in ./bin: run `make cluster-tools`")
    rel = pf.Release("mlops", "mlops", [root / "values" / "production.yaml"], tasks_namespace="mlops-jobs",
                     serving_namespace="mlops-serving")
    made_pvs: list[str] = []
    timings = {}
    try:
        # the administrator's prerequisites: CPU nodes of the example's node pool
        for node in CPU_NODES:
            cluster.core.patch_node(node, {"metadata": {"labels": {"node-pool": "general"}}})
        for name in ("namespaces", "secrets", "external-secrets"):
            started = time.monotonic()
            run_step(cluster, name, steps[name], root, env)
            timings[name] = time.monotonic() - started
        # cert-manager's part (the prose of the Secrets section): the TLS Secrets
        for ns, secret_name in (("mlops", "airflow-example-com-tls"), ("mlops", "mlops-airflow-mlops-mlflow-tls"),
                                ("mlops-serving", "models-example-com-tls")):
            pf.create_secret(cluster, ns, secret_name, "kubernetes.io/tls", ())
        run_step(cluster, "check-secrets", steps["check-secrets"], root, env)
        for ns in NAMESPACES:
            labels = cluster.core.read_namespace(ns).metadata.labels
            assert labels["pod-security.kubernetes.io/enforce"] == "restricted", ns
        # the storage class's volumes (a provisioner's part)
        known_hosts = tmp_path / "known-hosts-values.yaml"
        known_hosts.write_text(yaml.safe_dump({"airflow": {"dags": {"gitSync": {
            "knownHosts": (home / ".mlops-deploy-key" / "known_hosts").read_text()}}}}))
        made_pvs = pf.provide_volumes(cluster, pf.render(cluster, rel, extra_values=[known_hosts]), rel, "vol-guide")
        started = time.monotonic()
        run_step(cluster, "install", steps["install"], root, env)
        timings["install"] = time.monotonic() - started
        seen = pf.assert_platform_ready(cluster, rel)
        hooks = {h.split()[2] for h in seen["hook Job"]}
        # the official chart's Jobs are plain Jobs (charts/airflow-mlops/values.yaml: with --wait a
        # post-install hook would start only after the pods that wait for it); ours stays a hook
        assert {"Job mlops/mlops-run-airflow-migrations", "Job mlops/mlops-create-user"} <= set(seen["Job"]), seen
        assert "mlops-airflow-mlops-pools" in hooks and not {"mlops-run-airflow-migrations", "mlops-create-user"} & hooks, seen
        cluster_report.append(
            "guide (values/README.md, run as written): "
            + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
            + f"; healthy: {len(seen['Deployment'])} Deployments, {len(seen['StatefulSet'])} StatefulSets, "
            f"{len(seen['PVC'])} claims Bound, hook Jobs {sorted(hooks)}"
        )
    finally:
        cluster.helm("uninstall", "mlops", "-n", "mlops", "--wait", "--timeout", "3m", check=False)
        for ns in NAMESPACES:
            try:
                cluster.core.delete_namespace(ns)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        for pv in cluster.core.list_persistent_volume().items:
            if pv.metadata.name in made_pvs or pv.metadata.name.startswith("mlops-mlops-airflow-mlops"):
                cluster.core.delete_persistent_volume(pv.metadata.name)

        def gone() -> bool:
            names = {n.metadata.name for n in cluster.core.list_namespace().items}
            return not names & set(NAMESPACES)

        cluster.wait_for("the guide's namespaces to be deleted", gone, timeout=300, interval=2)
