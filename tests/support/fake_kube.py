"""An in-memory stand-in for the Kubernetes API of ml_serving's rollout (no API server can run in
the DAG tier): 404 on a missing object, 409 on create of an existing one, strategic-merge-like
patch, generation bump on spec change; methods named like the kubernetes client."""

from __future__ import annotations

import copy
from typing import Any

from kubernetes.client.exceptions import ApiException

from tests.support.merge import deep_merge


class FakeKube:
    """Namespaced objects by (kind, namespace, name); methods named like the kubernetes client."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: list[str] = []

    def api(self, kind: str) -> Any:
        fake = self

        class Api:
            def __getattr__(self, attr: str):
                verb, _, suffix = attr.partition("_namespaced_")
                assert suffix in ("deployment", "service", "ingress"), attr

                def call(*args: Any) -> Any:
                    fake.calls.append(f"{verb} {kind}")
                    return getattr(fake, verb)(kind, *args)

                return call

        return Api()

    def create(self, kind: str, namespace: str, body: dict) -> dict:
        key = (kind, namespace, body["metadata"]["name"])
        if key in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        obj = copy.deepcopy(body)
        obj["metadata"]["generation"] = 1
        self.objects[key] = obj
        return obj

    def read(self, kind: str, name: str, namespace: str) -> dict:
        try:
            return copy.deepcopy(self.objects[(kind, namespace, name)])
        except KeyError:
            raise ApiException(status=404, reason="NotFound") from None

    def patch(self, kind: str, name: str, namespace: str, body: dict) -> dict:
        current = self.read(kind, name, namespace)
        merged = deep_merge(current, body)
        if merged.get("spec") != current.get("spec"):
            merged["metadata"]["generation"] = current["metadata"]["generation"] + 1
        self.objects[(kind, namespace, name)] = merged
        return merged

    def replace(self, kind: str, name: str, namespace: str, body: dict) -> dict:
        current = self.read(kind, name, namespace)
        obj = copy.deepcopy(body)
        obj["metadata"]["generation"] = current["metadata"]["generation"] + 1
        self.objects[(kind, namespace, name)] = obj
        return obj

    def delete(self, kind: str, name: str, namespace: str) -> None:
        self.read(kind, name, namespace)
        del self.objects[(kind, namespace, name)]
