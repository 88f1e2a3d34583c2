"""The rules every DAG folder follows, in one place: id -> the sentence dags/README.md carries.

A test that enforces a rule says so with `@rule("<id>")` (the `dag_folder` marker): it runs against
the repository's dags/ and, with `make test-dags VALUES=<files> DAGS=<folder>`, against a folder and
values files of one's own (tests/dags/conftest.py). tests/dags/test_readme_rules.py checks that
every rule has a test and its sentence in dags/README.md ("Rules `make test-dags` checks"), and
that the README lists no rule that is not here.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "dags" / "README.md"
BEGIN, END = "<!-- rules:begin -->", "<!-- rules:end -->"

RULES: dict[str, str] = {
    "imports": "Every DAG file imports without errors with each environment's platform.json and pod templates.",
    "one-dag-per-file": (
        "A `*.py` file holds exactly one DAG whose `dag_id` is the file name; "
        "`pipelines/<dag_id>.yaml` makes one DAG named like the file."
    ),
    "serializes": "Every DAG survives Airflow's serialization (what the DAG processor stores).",
    "tags": "Every DAG has at least one tag (`**cfg.dag_args(dag_id, ...)` gives `mlops` plus yours).",
    "doc": (
        "Every DAG is documented: `doc_md` of more than 80 characters "
        "(a YAML pipeline: `doc_md` or `description`)."
    ),
    "retries": (
        "`default_args` has `retries` of at least 1, every task has `retries` of at least 1 and every pod "
        "task retries with exponential backoff (`**cfg.dag_defaults()`)."
    ),
    "owner": "Every task has an owner, not empty and not `airflow` (`**cfg.dag_defaults()`).",
    "path-filter": (
        "Every DAG registers the `mlops_path_segment` filter that names the run's workspace "
        "directory (`**cfg.dag_defaults()`)."
    ),
    "profile": "Every pod task uses the pod template of a profile of platform.json (`pod_task(..., profile=...)`).",
    "no-shell-conf": (
        "No shell (`sh -c`, `bash -c`, ...) and no `python -c` receives templated code (`{{ ... }}`): "
        "a command is an argument list."
    ),
    "default-conf": "A run triggered with an empty conf is valid: every Param's default passes its schema.",
    "parse-offline": "Parsing the folder needs no network, no Airflow Variable and no Connection.",
    "thin-files": (
        "A DAG file imports none of `kubernetes`, `mlflow`, `requests`, `mlops_platform.serving`, "
        "`mlops_platform.mlflow_rest` at top level (inside tasks only)."
    ),
    "pod-settings": (
        "A pod task deletes only succeeded pods, waits at least 300 s for its pod to start "
        "(`startup_timeout_seconds`, `schedule_timeout_seconds` not less), streams the logs and "
        "re-attaches after a restart (`pod_task()` sets all of it)."
    ),
    "pod-valid": (
        "Every pod task's pod, built as the operator builds it from the profile's pod template, is a valid "
        "Kubernetes object for each tested Kubernetes version and meets the restricted Pod Security Standard."
    ),
    "gpus": (
        "A pod's `nvidia.com/gpu` limit is its profile's GPU count (with the template's GPU toleration); "
        "the task takes at least that many slots of the platform's GPU pool."
    ),
    "registry": "Images come from the platform's registry prefix and pods carry its pull secret.",
    "workspace": (
        "A pod mounts only its run's own workspace directory (`MLOPS_WORKSPACE_SUBPATH` = "
        "`<dag_id>/<run>`, mounted with `subPathExpr`)."
    ),
    "namespace": "Pods run in the tasks namespace of platform.json, labelled with their DAG, task, run and try.",
    "gpu-wait": "A GPU pod waits for a GPU at most the chart's `pools.gpuMaxWaitSeconds` (a CPU pod 600 s).",
    "schedules": "Every DAG the chart's `pipelines.schedules` names is in the folder and takes that schedule.",
}


def rule(*ids: str) -> pytest.MarkDecorator:
    """Mark a test as enforcing these rules of RULES (the `dag_folder` marker)."""
    unknown = [i for i in ids if i not in RULES]
    if unknown or not ids:
        raise ValueError(f"rule(): unknown rule ids {unknown}; known: {sorted(RULES)}")
    return pytest.mark.dag_folder(*ids)


def readme_lines() -> list[str]:
    """The README's rule list as RULES renders it: one bullet per rule, id then sentence."""
    return [f"- `{rule_id}`: {text}" for rule_id, text in RULES.items()]


def readme_rules(text: str) -> list[str]:
    """The lines between the rules markers of dags/README.md."""
    match = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    if match is None:
        raise ValueError(f"{README}: no {BEGIN} ... {END} block")
    return match.group(1).splitlines()


def write_readme() -> None:
    """Rewrite the rules block of dags/README.md from RULES."""
    text = README.read_text()
    readme_rules(text)  # the markers are there
    block = "\n".join([BEGIN, *readme_lines(), END])
    text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    README.write_text(text)


if __name__ == "__main__":
    write_readme()
    sys.exit(0)


def rule_uses() -> dict[str, list[str]]:
    """Rule id -> the tests of tests/dags marked with it (`@rule("<id>", ...)`)."""
    uses: dict[str, list[str]] = {}
    for path in sorted(Path(__file__).resolve().parent.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and getattr(deco.func, "id", None) == "rule":
                    for arg in deco.args:
                        uses.setdefault(arg.value, []).append(f"{path.name}::{node.name}")
    return uses


def check_documented(dagbags: dict) -> None:
    """The `doc` rule: every DAG of every bag has a doc_md of more than 80 characters."""
    short = {
        f"{env_name}:{dag.dag_id}": len((dag.doc_md or "").strip())
        for env_name, bag in dagbags.items()
        for dag in bag.dags.values()
        if not (dag.doc_md and len(dag.doc_md.strip()) > 80)
    }
    assert short == {}, "DAGs whose doc_md has 80 characters or fewer (DAG -> length)"
