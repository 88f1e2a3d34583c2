"""What the production guide (values/README.md), the chart README, NOTES.txt and the GitOps
manifests tell a user, checked against what the chart renders.

- The guide installs with `helm upgrade --install ... --wait`: with the values it installs
  (the production example) and with the kind values, the official chart's migration and
  create-user Jobs are plain Jobs, not Helm hooks. As post-install hooks they would start only
  after --wait saw the Airflow pods ready, and those pods wait for the migrations: the command
  would never finish on a real cluster (kwok, which completes init containers at once, cannot
  show it; tests/cluster/test_guide.py runs the command itself).
- NOTES.txt names objects that exist in the same render (release `mlops`, as the guide installs it).
- No document tells helm to create a namespace; git-sync v4 is pinned with `ref`; production
  deploys a tag; Flux does not fall back silently to the example's host key.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.support import paths
from tests.support.guide import guide_steps
from tests.support.helm import HelmError, helm_template, parse_documents, render_chart
from tests.support.overlays import with_overlays

HOOK = "helm.sh/hook"
OFFICIAL_JOBS = ("-run-airflow-migrations", "-create-user")
WAIT_INIT = "wait-for-airflow-migrations"
DOCS = [paths.REPO / "README.md", paths.CHART_DIR / "README.md", paths.VALUES_DIR / "README.md"]


def install_command() -> str:
    return guide_steps()["install"]


def test_the_guide_installs_with_wait() -> None:
    """The premise of the next test: if the guide stops using --wait, revisit it."""
    assert "--wait" in install_command().split()
    assert "helm upgrade --install mlops charts/airflow-mlops -n mlops" in install_command()


@pytest.mark.parametrize("values_file", ["production.example.yaml", "kind.yaml"])
def test_the_jobs_the_airflow_pods_wait_for_are_plain_jobs(values_file: str) -> None:
    objects = render_chart(values_files=with_overlays(paths.VALUES_DIR / values_file), release="mlops",
                           namespace="mlops", include_subchart=True, validate=False)
    jobs = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Job"}
    waiting = [o["metadata"]["name"] for o in objects if o["kind"] in ("Deployment", "StatefulSet")
               and any(c["name"] == WAIT_INIT for c in o["spec"]["template"]["spec"].get("initContainers") or [])]
    assert waiting, "no Airflow pod waits for the migrations any more: revisit this test"
    for suffix in OFFICIAL_JOBS:
        (name,) = [n for n in jobs if n.endswith(suffix)]
        annotations = jobs[name]["metadata"].get("annotations") or {}
        assert HOOK not in annotations, f"{values_file}: {name} is a Helm hook {annotations[HOOK]!r}; " \
            f"with `helm --wait` it would start only after {waiting} are ready, and they wait for it"
    # our pools Job, which waits for the migrations itself, stays a hook that runs after --wait
    (pools,) = [n for n in jobs if n.endswith("-pools")]
    assert "post-install" in jobs[pools]["metadata"]["annotations"][HOOK]


def notes(values_files: list[Path], release: str = "mlops", namespace: str = "mlops", tmp: Path | None = None) -> str:
    """NOTES.txt as helm prints it after an install: helm template does not print NOTES, so a copy
    of the chart gets a template that includes it by name into a ConfigMap."""
    chart = tmp / "airflow-mlops"
    shutil.copytree(paths.CHART_DIR, chart, symlinks=True)
    (chart / "templates" / "zz-notes.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n'
        'data:\n  notes: {{ include "airflow-mlops/templates/NOTES.txt" . | toJson }}\n')
    out = helm_template(values_files=values_files, release=release, namespace=namespace, chart=chart,
                        show_only=["templates/zz-notes.yaml"])
    return yaml.safe_load(out)["data"]["notes"]


def test_notes_name_what_the_production_release_renders(tmp_path: Path) -> None:
    files = with_overlays(paths.VALUES_DIR / "production.example.yaml")
    text = notes(files, tmp=tmp_path)
    objects = parse_documents(helm_template(values_files=files, release="mlops", namespace="mlops"))
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    configmaps = re.findall(r"get configmap (\S+)", text)
    services = re.findall(r"port-forward svc/(\S+)", text)
    jobs = re.findall(r"job/(\S+)", text)
    assert configmaps == ["airflow-mlops-platform"] and services and jobs, text
    for kind, found in (("ConfigMap", configmaps), ("Service", services), ("Job", jobs)):
        for name in found:
            assert (kind, name) in names, f"NOTES.txt names {kind} {name}, which the release does not have"
    assert "WARNING" not in text


def test_notes_warn_about_development_databases(tmp_path: Path) -> None:
    text = notes(with_overlays(paths.VALUES_DIR / "kind.yaml"), tmp=tmp_path)
    assert "WARNING: this release is a development setup" in text and "devDatabase" in text


def helm_commands(text: str) -> list[str]:
    """Every helm command of the document's code blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            if re.match(r"\s*helm\s", command):
                commands.append(command.strip())
    return commands


def test_no_document_lets_helm_create_a_namespace() -> None:
    """The guide: namespaces (their Pod Security labels, their lifetime) are made beforehand."""
    installs = []
    for doc in DOCS:
        for command in helm_commands(doc.read_text()):
            assert "--create-namespace" not in command, f"{doc.relative_to(paths.REPO)}: {command}"
            installs += [command] if " upgrade --install " in f" {command} " else []
    assert len(installs) >= 2, installs


def test_git_sync_v4_is_pinned_with_ref() -> None:
    """The official chart's git-sync is v4, which reads `ref` only; the docs and examples use it."""
    official = yaml.safe_load((paths.REFERENCE_DIR / "values.yaml").read_text())
    assert official["images"]["gitSync"]["tag"].startswith("v4.")
    guide = (paths.VALUES_DIR / "README.md").read_text()
    assert not re.search(r"\brev: ", guide), "the guide pins git-sync with `rev:`, a git-sync v3 setting"
    prod = yaml.safe_load((paths.VALUES_DIR / "production.example.yaml").read_text())
    assert "ref" in prod["airflow"]["dags"]["gitSync"] and "rev" not in prod["airflow"]["dags"]["gitSync"]


def test_production_deploys_the_tag_of_this_chart_version() -> None:
    version = yaml.safe_load((paths.CHART_DIR / "Chart.yaml").read_text())["version"]
    tag = f"airflow-mlops-{version}"
    appset = yaml.safe_load((paths.VALUES_DIR / "gitops" / "argocd" / "applicationset.yaml").read_text())
    (prod,) = [e for e in appset["spec"]["generators"][0]["list"]["elements"] if e["environment"] == "production"]
    assert prod["revision"] == tag
    repo = yaml.safe_load((paths.VALUES_DIR / "gitops" / "flux" / "gitrepository.yaml").read_text())
    assert repo["spec"]["ref"] == {"tag": tag}
    assert f"`{tag}`" in (paths.VALUES_DIR / "README.md").read_text()


def test_flux_requires_the_known_hosts_configmap() -> None:
    release = yaml.safe_load((paths.VALUES_DIR / "gitops" / "flux" / "helmrelease-production.yaml").read_text())
    (known,) = [v for v in release["spec"]["valuesFrom"] if v.get("targetPath") == "airflow.dags.gitSync.knownHosts"]
    assert not known.get("optional"), "optional: true would install the example's host key when the ConfigMap is missing"


def test_the_example_host_key_is_refused_for_another_git_host() -> None:
    """Argo CD deploys the values file as committed: its example key pins git.example.com only."""
    with pytest.raises(HelmError, match="pins no key for git.mycorp.internal"):
        helm_template(values_files=[paths.VALUES_DIR / "production.example.yaml"],
                      values={"airflow": {"dags": {"gitSync": {"repo": "git@git.mycorp.internal:ml/dags.git"}}}})
