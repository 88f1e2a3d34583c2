"""The private registry of the tests (scripts/cluster/registry.py) and the platform's images in it.

The registry is the real CNCF distribution registry with htpasswd auth and TLS, standing in for
Nexus (no other registry is reachable here)::

    from tests.support import registry

    ca_cert, ca_key = registry.make_ca(tmp / "ca")            # or the control-plane tier's pki/ca.*
    with registry.running(tmp / "registry", ca_cert, ca_key, registry.free_port()) as reg:
        values = registry.values_file(reg, tmp / "registry-values.yaml")   # images + pull secret
        pushed = registry.push_tier_images(reg)               # {"airflow": "127.0.0.1:P/mlops/airflow:dev", ...}
        # helm install ... -f values/kind.yaml -f <values>: the chart pulls exactly `pushed`
        reg.dockerconfigjson()                                # for a Secret of your own
        reg.get("/v2/mlops/trainer/manifests/dev", auth=False)[0] == 401

``push_tier_images`` needs a Docker engine that answers (DOCKER_HOST, e.g. from
``scripts/docker-engine start``) holding the images the container tier built
(values/kind.yaml's names, `make test-docker`): it tags them with the names the chart renders
for ``values/kind.yaml`` + ``values_file(reg)`` (scripts/images-refs) and pushes them with
scripts/images-push and the registry's credentials, as `make push` does.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml

from scripts.cluster.registry import (  # noqa: F401  (re-exported: one import for the tests)
    Registry,
    RegistryError,
    load,
    make_ca,
    running,
    ssl_context,
    start,
    stop,
)
from tests.support import paths

KIND_VALUES = paths.VALUES_DIR / "kind.yaml"
MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")


def _script(name: str) -> ModuleType:
    """scripts/<name> (a Python program without .py) as a module."""
    key = name.replace("-", "_")
    if key in sys.modules:
        return sys.modules[key]
    loader = importlib.machinery.SourceFileLoader(key, str(paths.SCRIPTS_DIR / name))
    spec = importlib.util.spec_from_loader(key, loader)
    assert spec
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    loader.exec_module(module)
    return module


def images_refs() -> ModuleType:
    return _script("images-refs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def values_file(reg: Registry, dest: Path, path: str = "mlops") -> Path:
    """A values file (mode 0600: it holds the password) that takes the platform's images from
    ``<reg.host>/<path>`` and renders the pull secret for the registry's credentials."""
    dest.write_text(yaml.safe_dump(reg.chart_values(path), sort_keys=False))
    dest.chmod(0o600)
    return dest


def push_tier_images(reg: Registry, names: tuple[str, ...] = ("airflow", "mlflow", "trainer"),
                     path: str = "mlops", workdir: Path | None = None,
                     values: tuple[Path, ...] = (KIND_VALUES,)) -> dict[str, str]:
    """Push the container tier's images of ``names`` to ``reg`` under the names the chart
    renders for ``values`` + the registry's values; returns name -> reference pushed."""
    refs = images_refs()
    workdir = workdir or Path(os.environ.get("TMPDIR", "/tmp"))
    overlay = values_file(reg, workdir / f"registry-values-{reg.host.replace(':', '-')}.yaml", path)
    built = refs.refs(list(values))
    target = refs.refs([*values, overlay])
    docker = os.environ.get("DOCKER", "docker")
    missing = []
    for name in names:
        subprocess.run([docker, "tag", built[name], target[name]], check=True, capture_output=True)
        if not holds(reg, target[name], docker):
            missing.append(name)
    if missing:
        env = {**os.environ, "REGISTRY_USERNAME": reg.username, "REGISTRY_PASSWORD": reg.password}
        proc = subprocess.run([sys.executable, str(paths.SCRIPTS_DIR / "images-push"),
                               *[a for v in (*values, overlay) for a in ("--values", str(v))], *missing],
                              env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RegistryError(f"scripts/images-push failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return {n: target[n] for n in names}


def holds(reg: Registry, ref: str, docker: str = "docker") -> bool:
    """The registry has ``ref``'s tag for the very image the engine has under ``ref`` (the
    manifest's config digest is the image ID): a push would change nothing."""
    repo, tag = ref.removeprefix(reg.host + "/").rsplit(":", 1)
    status, _, body = reg.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ", ".join(MANIFEST_TYPES)})
    if status != 200:
        return False
    image_id = subprocess.run([docker, "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True, text=True,
                              check=False).stdout.strip()
    return json.loads(body).get("config", {}).get("digest") == image_id
