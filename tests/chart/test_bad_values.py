"""Bad values are refused, each with a message naming the key and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.helm import HelmError, render_chart

KNOWN_HOSTS = (
    "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
)
REGISTRY = {"enabled": True, "server": "nexus.example.com", "username": "u", "password": "p"}


def git_sync(repo: str, **extra: Any) -> dict[str, Any]:
    return {"airflow": {"dags": {"gitSync": {"enabled": True, "repo": repo, "sshKeySecret": "k", **extra}}}}


CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "ssh-url-without-known-hosts",
        git_sync("ssh://git@git.example.com/ml/dags.git"),
        ["airflow.dags.gitSync.knownHosts is required", "scripts/gitsync-bootstrap", "--set-file"],
    ),
    (
        "scp-like-repo-without-known-hosts",
        git_sync("git@github.com:org/dags.git"),
        ["airflow.dags.gitSync.knownHosts is required", "scripts/gitsync-bootstrap"],
    ),
    (
        "ssh-repo-without-key",
        {
            "airflow": {
                "dags": {"gitSync": {"enabled": True, "repo": "git@h:o/r.git", "knownHosts": KNOWN_HOSTS}}
            }
        },
        ["airflow.dags.gitSync.sshKeySecret", "gitSshKey"],
    ),
    (
        "registry-without-credentials",
        {"registry": {"enabled": True, "server": "nexus.example.com"}},
        ["registry.existingSecret", "registry.username", "registry.password"],
    ),
    (
        "registry-without-server",
        {"registry": {"enabled": True, "existingSecret": "pull"}, "airflow": {"imagePullSecrets": ["pull"]}},
        ["registry.server is required"],
    ),
    (
        "registry-secret-not-in-imagePullSecrets",
        {"registry": REGISTRY, "airflow": {"imagePullSecrets": ["other"]}},
        ["airflow.imagePullSecrets must list", '"test-airflow-mlops-registry"', "no registry.secretNames"],
    ),
    (
        "existing-registry-secret-not-listed",
        {"registry": {"enabled": True, "server": "n", "existingSecret": "nexus-pull"}},
        ["airflow.imagePullSecrets must list", '"nexus-pull"'],
    ),
    (
        "nfs-without-server",
        {"storage": {"nfs": {"enabled": True, "path": "/exports"}}},
        ["storage.nfs.server", "storage.nfs.path"],
    ),
    (
        "nfs-without-path",
        {"storage": {"nfs": {"enabled": True, "server": "10.0.0.2"}}},
        ["storage.nfs.path"],
    ),
    ("gpus-negative", {"profiles": {"gpu-1": {"gpus": -1}}}, ["profiles", "gpu-1", "gpus", "minimum"]),
    ("gpus-fractional", {"profiles": {"gpu-1": {"gpus": 1.5}}}, ["profiles", "gpu-1", "gpus", "integer"]),
    ("gpus-non-numeric", {"profiles": {"gpu-1": {"gpus": "two"}}}, ["profiles", "gpu-1", "gpus", "integer"]),
    (
        "gpu-pool-smaller-than-largest-profile",
        {"pools": {"items": [{"name": "gpu", "slots": 4}]}},
        ["pools.items[gpu].slots=4", "largest GPU profile (8 GPUs)", "slots >= 8"],
    ),
    (
        "gpu-pool-missing",
        {"pools": {"items": [{"name": "other", "slots": 4}]}},
        ['pools.gpuPool "gpu" is not in pools.items'],
    ),
    ("unknown-key-in-profile", {"profiles": {"cpu": {"gpus": 0, "gpu": 1}}}, ["profiles", "cpu", "'gpu'"]),
    ("unknown-key-in-storage", {"storage": {"nfs": {"sever": "x"}}}, ["storage", "nfs", "'sever'"]),
    ("unknown-key-in-registry", {"registry": {"secretNames": ["x"]}}, ["registry", "'secretNames'"]),
    ("unknown-key-in-tasks", {"tasks": {"rbac": {"clusterWide": True}}}, ["tasks", "rbac", "'clusterWide'"]),
    ("unknown-key-in-pools", {"pools": {"hooks": False}}, ["pools", "'hooks'"]),
    ("unknown-key-in-devDatabase", {"devDatabase": {"password": "x"}}, ["devDatabase", "'password'"]),
    (
        "profile-name-uppercase",
        {"profiles": {"GPU_1": {"gpus": 1}}},
        ["profiles.GPU_1", "lowercase DNS label"],
    ),
    ("profile-name-with-slash", {"profiles": {"../etc": {"gpus": 0}}}, ["profiles.../etc", "file name"]),
    (
        "default-profile-unknown",
        {"defaultProfile": "gpu-3"},
        ['defaultProfile "gpu-3" is not a profile', "gpu-1"],
    ),
    ("trainer-tag-latest", {"images": {"trainer": {"tag": "latest"}}}, ["images", "trainer", "tag"]),
    (
        "dev-database-without-secret",
        {"devDatabase": {"enabled": True}},
        ["devDatabase.auth.existingSecret is required"],
    ),
    (
        "dev-database-with-bitnami-postgresql",
        {"devDatabase": {"enabled": True, "auth": {"existingSecret": "db"}}},
        ["airflow.postgresql.enabled=false", "57328"],
    ),
    (
        "dev-database-without-metadata-secret",
        {
            "devDatabase": {"enabled": True, "auth": {"existingSecret": "db"}},
            "airflow": {"postgresql": {"enabled": False}},
        },
        [
            "airflow.data.metadataSecretName",
            "test-airflow-mlops-dev-database.airflow-mlops.svc.cluster.local",
        ],
    ),
    (
        "mounts-not-wired",
        {"mounts": {"configMapPrefix": "team-b"}},
        ['mount ConfigMap "team-b-platform" at /opt/airflow/platform', "mounts.configMapPrefix"],
    ),
]


@pytest.mark.parametrize("values,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_values_are_refused_with_a_clear_message(values: dict[str, Any], expected: list[str]) -> None:
    with pytest.raises(HelmError) as excinfo:
        render_chart(values=values, validate=False)
    message = str(excinfo.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_at_least_ten_bad_cases() -> None:
    assert len(CASES) >= 10


def test_the_good_neighbours_of_the_bad_cases_render() -> None:
    """Each refusal is specific: the corrected values render."""
    render_chart(values=git_sync("git@github.com:org/dags.git", knownHosts=KNOWN_HOSTS))
    render_chart(
        values={
            "registry": REGISTRY,
            "airflow": {"imagePullSecrets": [{"name": "test-airflow-mlops-registry"}]},
        }
    )
    render_chart(values={"storage": {"nfs": {"enabled": True, "server": "10.0.0.2", "path": "/exports"}}})
    render_chart(values={"pools": {"items": [{"name": "gpu", "slots": 8}]}})
    render_chart(values={"pools": {"items": [{"name": "gpu", "slots": -1}]}})
    render_chart(values={"profiles": {"gpu-8": None}, "pools": {"items": [{"name": "gpu", "slots": 4}]}})
    render_chart(values=git_sync("https://github.com/org/dags.git"))  # https: no host key involved
