"""ml_serving's rollout logic: create-or-patch, idempotency, rollback, readiness, smoke test.

No Kubernetes API server can run here, so the API is an in-memory stand-in (FakeKube) that
answers like the real one where the code depends on it (404 on a missing object, 409 on create
of an existing one, strategic-merge-like patch, generation bump on spec change). The smoke
test talks to a real HTTP server on localhost.
"""

from __future__ import annotations

import copy
import http.server
import json
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.fake_kube import FakeKube
from tests.support.processes import serving_in_thread


@pytest.fixture()
def cfg(platform_envs):
    from mlops_platform.config import parse_platform

    env = platform_envs["production.example"]
    doc = copy.deepcopy(env.platform)
    doc["serving"] = {**doc["serving"], "enabled": True, "domain": "models.example.com"}
    with env.active():
        return parse_platform(doc, "platform.json")


@pytest.fixture()
def kube(monkeypatch):
    from mlops_platform import serving

    fake = FakeKube()
    monkeypatch.setattr(
        serving, "_clients", lambda: (fake.api("Deployment"), fake.api("Service"), fake.api("Ingress"))
    )
    # read_* results go through ApiClient().sanitize_for_serialization: plain dicts pass unchanged.
    return fake


def _image_args(kube: FakeKube, ns: str) -> list[str]:
    dep = kube.objects[("Deployment", ns, "iris-serving")]
    return dep["spec"]["template"]["spec"]["containers"][0]["command"]


def test_create_then_patch_is_idempotent_and_rollback_restores(cfg, kube) -> None:
    from mlops_platform import serving

    ns = serving.serving_namespace(cfg)
    v1 = serving.serving_objects(cfg, "iris", "1")
    snap0 = serving.snapshot(v1)
    assert all(item["object"] is None for item in snap0)
    assert serving.apply(v1) == [
        "created Deployment/iris-serving",
        "created Service/iris-serving",
        "created Ingress/iris-serving",
    ]
    assert "models:/iris/1" in _image_args(kube, ns)

    # same version again: patched, nothing changes (no new generation)
    assert serving.apply(serving.serving_objects(cfg, "iris", "1"))[0] == "patched Deployment/iris-serving"
    assert kube.objects[("Deployment", ns, "iris-serving")]["metadata"]["generation"] == 1

    # roll out v2, then roll back to the snapshot taken before it
    v2 = serving.serving_objects(cfg, "iris", "2")
    snap1 = serving.snapshot(v2)
    serving.apply(v2)
    assert "models:/iris/2" in _image_args(kube, ns)
    restored = serving.restore(snap1)
    assert restored == [
        "restored Deployment/iris-serving",
        "restored Service/iris-serving",
        "restored Ingress/iris-serving",
    ]
    assert "models:/iris/1" in _image_args(kube, ns)

    # rolling back a first rollout deletes what it created
    assert serving.restore(snap0) == [
        "deleted Deployment/iris-serving",
        "deleted Service/iris-serving",
        "deleted Ingress/iris-serving",
    ]
    assert kube.objects == {}


def _deployment_status(generation, observed, replicas, updated, available, unavailable=0, conditions=()):
    return SimpleNamespace(
        metadata=SimpleNamespace(generation=generation),
        spec=SimpleNamespace(replicas=replicas),
        status=SimpleNamespace(
            observed_generation=observed,
            updated_replicas=updated,
            available_replicas=available,
            unavailable_replicas=unavailable,
            conditions=list(conditions),
        ),
    )


def test_wait_ready_needs_the_new_generation_available(monkeypatch) -> None:
    from mlops_platform import serving

    states = iter(
        [
            _deployment_status(2, 1, 2, 2, 2),  # old generation still observed
            _deployment_status(2, 2, 2, 1, 2, unavailable=1),  # rolling
            _deployment_status(2, 2, 2, 2, 2),  # done
        ]
    )
    apps = SimpleNamespace(read_namespaced_deployment=lambda name, ns: next(states))
    monkeypatch.setattr(serving, "_clients", lambda: (apps, None, None))
    monkeypatch.setattr(serving.time, "sleep", lambda s: None)
    assert serving.wait_ready("ns", "iris-serving", timeout_seconds=60)["ready"] is True


def test_wait_ready_fails_on_progress_deadline(monkeypatch) -> None:
    from mlops_platform import serving

    stuck = _deployment_status(
        3,
        3,
        1,
        0,
        0,
        conditions=[
            SimpleNamespace(type="Progressing", reason="ProgressDeadlineExceeded", message="no progress")
        ],
    )
    apps = SimpleNamespace(read_namespaced_deployment=lambda name, ns: stuck)
    monkeypatch.setattr(serving, "_clients", lambda: (apps, None, None))
    monkeypatch.setattr(serving.time, "sleep", lambda s: None)
    with pytest.raises(RuntimeError, match="no progress"):
        serving.wait_ready("ns", "iris-serving", timeout_seconds=60)


@pytest.fixture()
def model_server():
    """A real HTTP server on localhost answering /invocations like the test wants."""
    answers: dict[str, Any] = {"body": {"predictions": [0, 2]}}
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            data = json.dumps(answers["body"]).encode()
            self.send_response(200 if self.path == "/invocations" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    with serving_in_thread(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as port:
        yield f"http://127.0.0.1:{port}", answers, received


def test_smoke_test_accepts_predictions_and_rejects_garbage(model_server) -> None:
    from mlops_platform import serving

    url, answers, received = model_server
    payload = {"dataframe_split": {"columns": ["a"], "data": [[1.0]]}}
    assert serving.smoke_test(url, payload)["predictions"] == [0, 2]
    assert received == [payload]
    answers["body"] = {"error": "model failed to load"}
    with pytest.raises(RuntimeError, match="no predictions"):
        serving.smoke_test(url, payload)
