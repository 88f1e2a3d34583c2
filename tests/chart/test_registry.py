"""The registry pull secret has exactly the format of `kubectl create secret docker-registry`."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess

import pytest

from tests.support.helm import find, render_chart

KUBECTL = shutil.which("kubectl") or ("/usr/bin/kubectl" if os.path.exists("/usr/bin/kubectl") else None)
REG = {"enabled": True, "server": "nexus.example.com:8443", "username": "ci-puller", "password": "s3cr:et/+="}


def kubectl_dockerconfig(server: str, username: str, password: str, email: str | None) -> dict:
    args = [
        KUBECTL,
        "create",
        "secret",
        "docker-registry",
        "x",
        "--dry-run=client",
        "-o",
        "json",
        f"--docker-server={server}",
        f"--docker-username={username}",
        f"--docker-password={password}",
    ]
    if email:
        args.append(f"--docker-email={email}")
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    secret = json.loads(out)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    return json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))


@pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed (it is at /usr/bin/kubectl on the dev machines)"
)
@pytest.mark.parametrize("email", [None, "ci@example.com"])
def test_dockerconfigjson_equals_kubectl(email: str | None) -> None:
    reg = {**REG, **({"email": email} if email else {})}
    objects = render_chart(
        values={"registry": reg, "airflow": {"imagePullSecrets": ["test-airflow-mlops-registry"]}},
        show_only=["templates/registry/registry-secret.yaml"],
    )
    (secret,) = find(objects, "Secret", "test-airflow-mlops-registry")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    ours = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert ours == kubectl_dockerconfig(reg["server"], reg["username"], reg["password"], email)


def test_existing_secret_renders_nothing_and_secret_name_is_used() -> None:
    objects = render_chart(
        values={
            "registry": {"enabled": True, "server": "n", "existingSecret": "mine"},
            "airflow": {"imagePullSecrets": ["mine"]},
        }
    )
    assert [o for o in objects if o["kind"] == "Secret"] == []
    objects = render_chart(
        values={
            "registry": {**REG, "secretName": "nexus-pull"},
            "airflow": {"imagePullSecrets": [{"name": "nexus-pull"}]},
        }
    )
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Secret"] == ["nexus-pull"]


def test_secret_is_copied_into_a_separate_task_namespace() -> None:
    objects = render_chart(
        values={
            "registry": REG,
            "tasks": {"namespace": "jobs"},
            "airflow": {"imagePullSecrets": ["test-airflow-mlops-registry"]},
        }
    )
    secrets = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in find(objects, "Secret")}
    assert set(secrets) == {
        ("airflow-mlops", "test-airflow-mlops-registry"),
        ("jobs", "test-airflow-mlops-registry"),
    }
    a, b = secrets.values()
    assert a["data"] == b["data"]


def test_no_secret_by_default() -> None:
    assert find(render_chart(), "Secret") == []
