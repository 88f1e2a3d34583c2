"""Mistakes that used to install silently, each refused at render with a sentence naming the key,
the value and what is allowed; every refusal of one render reported at once; development-only
setups refused unless a value accepts them.

The checks live in templates/checks/ (check-values.yaml collects the messages of every
`airflow-mlops.checks.*` template and fails once). The cron grammar is cross-checked against
croniter, the parser Airflow itself uses for cron schedules.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.support.helm import HelmError, find, render_chart
from tests.support.merge import deep_merge as merge

KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"  # an ed25519 public key blob
PROBLEMS_RE = re.compile(r"(\d+) problem\(s\) in the values")


def refusal(values: dict[str, Any]) -> str:
    with pytest.raises(HelmError) as excinfo:
        render_chart(values=values, validate=False)
    return str(excinfo.value)


def problems(message: str) -> list[str]:
    """The refusals of one render, one per `* ` item."""
    body = message.split("each names the key to change):", 1)[1].split("\nUse --debug flag", 1)[0]
    return [p.strip() for p in re.split(r"\n\n\* ", "\n\n" + body.strip()) if p.strip()]


def git_sync(repo: str, known_hosts: str) -> dict[str, Any]:
    return {"airflow": {"dags": {"gitSync": {"enabled": True, "repo": repo, "sshKeySecret": "k",
                                             "knownHosts": known_hosts}}}}


# --- the silent mistakes, verbatim -----------------------------------------------------------------

SILENT: list[tuple[str, dict[str, Any], str]] = [
    (
        "schedule-hour-25",
        {"pipelines": {"schedules": {"ml_inference": "0 25 * * *"}}},
        'pipelines.schedules.ml_inference="0 25 * * *" is not a schedule: hour: 25 is outside 0-23. Allowed: a preset',
    ),
    (
        "schedule-dag-id-typo",
        {"pipelines": {"schedules": {"ml_infrence": "0 2 * * *"}}},
        'pipelines.schedules.ml_infrence: no DAG has the id "ml_infrence", so this schedule would never be used. '
        "Allowed: the scheduled DAGs of dags/ (gpu_sweep, ml_inference, ml_training, nfs_dataset_example, "
        "nfs_dataset_yaml, train_gpu_yaml), or the id of a DAG of your own listed in pipelines.dagIds (now: none).",
    ),
    (
        "images-prefix-on-another-registry",
        {
            "images": {"prefix": "nexus.example.com/mlops"},
            "registry": {"enabled": True, "server": "nexus.example.com:8443", "existingSecret": "nexus-pull"},
            "airflow": {"imagePullSecrets": ["nexus-pull"]},
        },
        'images.prefix="nexus.example.com/mlops" pulls from nexus.example.com but registry.server="nexus.example.com:8443": '
        "the pull secret the chart gives task pods is for nexus.example.com:8443",
    ),
    (
        "known-hosts-of-another-host",
        git_sync("git@git.example.com:ml/dags.git", f"github.com ssh-ed25519 {KEY}\n"),
        'airflow.dags.gitSync.knownHosts pins no key for git.example.com, the host of airflow.dags.gitSync.repo '
        '"git@git.example.com:ml/dags.git", so git-sync would refuse to connect',
    ),
    (
        "known-hosts-not-a-line",
        git_sync("git@git.example.com:ml/dags.git", "git.example.com is our git server\n"),
        'airflow.dags.gitSync.knownHosts line 1 "git.example.com is our git server" is not a known_hosts line. '
        "Allowed: `<host>[,<host>...] <key type> <base64 public key>`",
    ),
    (
        "gpu-4-with-3-gpus",
        {"profiles": {"gpu-4": {"gpus": 3}}},
        "profiles.gpu-4.gpus=3 disagrees with the profile's name: DAGs choose gpu-4 for 4 GPU(s). Set profiles.gpu-4.gpus=4",
    ),
    (
        "official-ingress-host-with-spaces",
        {"airflow": {"ingress": {"apiServer": {"enabled": True, "hosts": [{"name": "airflow example com"}]}}}},
        'ingress host "airflow example com" (Ingress test-ingress, from the official chart\'s '
        "api-server/api-server-ingress.yaml): not a DNS name, so the API server would refuse the Ingress at install.",
    ),
]


@pytest.mark.parametrize(("values", "expected"), [c[1:] for c in SILENT], ids=[c[0] for c in SILENT])
def test_a_silent_mistake_is_refused_naming_key_value_and_what_is_allowed(values, expected) -> None:
    message = refusal(values)
    assert expected in message, message
    assert len(problems(message)) == 1, message


def test_every_refusal_of_a_render_is_reported_at_once() -> None:
    # one values file with every silent mistake (one knownHosts: the one that is not a line)
    cases = [c for c in SILENT if c[0] != "known-hosts-of-another-host"]
    values: dict[str, Any] = {}
    for _, case, _ in cases:
        values = merge(values, case)
    values = merge(values, {"mlflow": {"backendStore": {"type": "sqlite"}}})
    message = refusal(values)
    found = problems(message)
    assert PROBLEMS_RE.search(message).group(1) == str(len(found))
    # the six silent mistakes, sqlite
    assert len(found) == len(cases) + 1, "\n".join(found)
    for _, _, expected in cases:
        assert any(expected in p for p in found), expected
    # refusals of the values' schema (here two) come first and alone: the other checks read
    # values of the types the schema guarantees
    values = merge(values, {"images": {"trainer": {"tag": "latest"}}, "pools": {"gpuMaxWaitSeconds": "1h"}})
    message = refusal(values)
    found = problems(message)
    assert PROBLEMS_RE.search(message).group(1) == "2", message
    assert found[0].startswith('images.trainer.tag="latest" is refused. Allowed: a fixed tag'), found
    assert found[1] == 'pools.gpuMaxWaitSeconds="1h" is a string. Allowed: a whole number.', found


# --- the good neighbours -----------------------------------------------------------------------------


def test_the_corrected_values_render() -> None:
    render_chart(values={"pipelines": {"schedules": {"ml_inference": "0 23 * * *", "ml_training": "@weekly"}}})
    render_chart(values={"pipelines": {"dagIds": ["team_etl"], "schedules": {"team_etl": "*/15 * * * mon-fri"}}})
    render_chart(values={
        "images": {"prefix": "nexus.example.com:8443/mlops/"},
        "registry": {"enabled": True, "server": "nexus.example.com:8443", "existingSecret": "nexus-pull"},
        "airflow": {"imagePullSecrets": ["nexus-pull"]},
    })
    for repo, line in [
        ("git@git.example.com:ml/dags.git", f"git.example.com,10.0.0.5 ssh-ed25519 {KEY}"),
        ("ssh://git@git.example.com:2222/ml/dags.git", f"[git.example.com]:2222 ssh-ed25519 {KEY}"),
        ("ssh://git@git.example.com/ml/dags.git", f"# pinned 2026-01-01\n*.example.com ssh-ed25519 {KEY} ci"),
        ("git@git.example.com:ml/dags.git", f"|1|c2FsdA==|aGFzaA== ssh-ed25519 {KEY}"),  # hashed: not comparable
    ]:
        render_chart(values=git_sync(repo, line + "\n"))
    render_chart(values={"profiles": {"gpu-4": None, "a100-4": {"gpus": 4}}})
    render_chart(values={"airflow": {"ingress": {"apiServer": {"enabled": True, "hosts": [{"name": "airflow.example.com"}]}}}})


def test_a_scheduled_dag_that_only_runs_when_triggered_is_refused() -> None:
    message = refusal({"pipelines": {"schedules": {"run_job": "@daily"}}})
    assert "pipelines.schedules.run_job: the DAG run_job runs only when triggered" in message


def test_known_hosts_on_another_port_must_pin_that_port() -> None:
    message = refusal(git_sync("ssh://git@git.example.com:2222/ml/dags.git", f"git.example.com ssh-ed25519 {KEY}\n"))
    assert "pins no key for [git.example.com]:2222" in message


def test_known_hosts_key_blob_must_hold_its_key_type() -> None:
    message = refusal(git_sync("git@git.example.com:ml/dags.git", f"git.example.com ssh-rsa {KEY}\n"))
    assert "is not a known_hosts line" in message


def test_cpu_profile_with_gpus_is_refused() -> None:
    assert "profiles.cpu.gpus=1 disagrees with the profile's name" in refusal({"profiles": {"cpu": {"gpus": 1}}})


def test_every_ingress_host_is_checked_ours_too() -> None:
    """Our MLflow Ingress's host is a rule of the values' schema, which the chart applies itself
    (so helm's --skip-schema-validation does not skip it): refused as a sentence naming the key."""
    from tests.support.helm import helm_template

    values = {"mlflow": {"ingress": {"enabled": True, "host": "MLflow.example.com"}}}
    with pytest.raises(HelmError) as excinfo:
        helm_template(values=values, extra_args=["--skip-schema-validation"])
    assert 'mlflow.ingress.host="MLflow.example.com" is not of the allowed form. Allowed: empty, or a DNS name' in str(excinfo.value)
    # the official chart's tls hosts too
    message = refusal({"airflow": {"ingress": {"apiServer": {"enabled": True, "hosts": [
        {"name": "airflow.example.com", "tls": {"enabled": True, "secretName": "t"}}, {"name": "airflow.example.com:443"}]}}}})
    assert 'ingress host "airflow.example.com:443"' in message


# --- cron: the chart's grammar against croniter --------------------------------------------------------

CRON = [
    "0 2 * * *", "*/5 * * * *", "0 0 1 1 *", "59 23 31 12 6", "0 0 * * 7", "0 9-17/2 * * mon-fri",
    "15,45 * * jan,jul *", "0 0 L * *", "0 0 * * mon#2", "0 0 ? * *", "0 0 1-31/10 * *",
    "0 25 * * *", "60 * * * *", "* * 0 * *", "* * 32 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *",
    "5-1 * * * *", "50-10/5 * * * *", "* * * foo *", "0 2 * *", "0 2 * * * *", "every day", "rm -rf /", "*-5 * * * *",
    "0 0 * * xyz", "1,,2 * * * *",
]


def test_the_cron_grammar_agrees_with_croniter() -> None:
    croniter = pytest.importorskip("croniter").croniter
    ids = [f"dag_{i}" for i in range(len(CRON))]
    values = {"pipelines": {"dagIds": ids, "schedules": dict(zip(ids, CRON, strict=True))}}
    try:
        render_chart(values=values, validate=False)
        refused: set[str] = set()
    except HelmError as err:
        refused = {m.group(1) for m in re.finditer(r"pipelines\.schedules\.(dag_\d+)=", str(err))}
    verdicts = {expr: (f"dag_{i}" not in refused) for i, expr in enumerate(CRON)}
    # five fields only: croniter also reads a sixth (seconds), which the chart refuses on purpose
    expected = {expr: bool(croniter.is_valid(expr)) and len(expr.split()) == 5 for expr in CRON}
    assert verdicts == expected
    assert not all(expected.values()) and any(expected.values())


def test_presets() -> None:
    render_chart(values={"pipelines": {"schedules": {"ml_training": "@daily", "gpu_sweep": "@once"}}})
    assert "@dayly is not a preset" in refusal({"pipelines": {"schedules": {"ml_training": "@dayly"}}})


# --- airflow.secret: one snippet with every entry ---------------------------------------------------


def test_the_airflow_secret_snippet_keeps_every_entry_and_renders() -> None:
    values = {
        "mlflow": {"auth": {"clientSecret": "mlflow-client"}},
        "basecommand": {"enabled": True, "org": "o", "ace": "a", "connectionSecret": {"name": "ngc"}},
        "airflow": {"secret": [{"envName": "EXTRA", "secretName": "mine", "secretKey": "k"}]},
    }
    message = refusal(values)
    (problem,) = [p for p in problems(message) if "airflow.secret lacks" in p]
    assert "mlflow.auth.enabled=true" in problem and "basecommand.enabled=true" in problem
    snippet = yaml.safe_load(problem[problem.index("airflow:\n"):])
    entries = snippet["airflow"]["secret"]
    assert {e["envName"] for e in entries} == {
        "EXTRA", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "AIRFLOW_CONN_NGC_BASECOMMAND"}
    # following the message gives values that render
    render_chart(values=merge(values, snippet))


# --- development-only setups -------------------------------------------------------------------------


def test_defaults_render_no_database_password() -> None:
    objects = render_chart(include_subchart=True, validate=False)
    assert not [o for o in objects if o["kind"] == "StatefulSet" and "postgresql" in o["metadata"]["name"]]
    secrets = [o["metadata"]["name"] for o in find(objects, "Secret")]
    assert not [s for s in secrets if "postgresql" in s or s.endswith("-metadata")], secrets
    (mlflow,) = [o for o in find(objects, "Deployment") if o["metadata"]["name"].endswith("-mlflow")]
    env = {e["name"]: e for c in mlflow["spec"]["template"]["spec"]["containers"] for e in c.get("env") or []}
    assert any(e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "mlflow-db" for e in env.values()), env


def test_the_bundled_postgresql_needs_its_acknowledgement() -> None:
    message = refusal({"airflow": {"postgresql": {"enabled": True}}})
    assert "airflow.postgresql.enabled=true renders the official chart's bundled PostgreSQL" in message
    assert "development.unsafeBundledPostgresql=true" in message
    objects = render_chart(
        values={"development": {"unsafeBundledPostgresql": True},
                "airflow": {"postgresql": {"enabled": True}, "data": {"metadataSecretName": None}}},
        include_subchart=True, validate=False,
    )
    images = {c["image"] for o in objects if o["kind"] == "StatefulSet"
              for c in o["spec"]["template"]["spec"]["containers"]}
    assert any("bitnamilegacy/postgresql" in i for i in images), images


def test_mlflow_on_sqlite_needs_its_acknowledgement() -> None:
    message = refusal({"mlflow": {"backendStore": {"type": "sqlite"}}})
    assert "mlflow.backendStore.type=sqlite keeps MLflow's runs" in message
    assert "mlflow.backendStore.sqlite.developmentOnly=true" in message
    render_chart(values={"mlflow": {"backendStore": {"type": "sqlite", "sqlite": {"developmentOnly": True}}}})
