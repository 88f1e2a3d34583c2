"""`make images VALUES=...` then `make push VALUES=...` against a real registry with
authentication and TLS on 127.0.0.1: the CNCF distribution registry (scripts/cluster/registry.py),
STANDING IN for Nexus, which cannot exist here.

The values are values/kind.yaml plus the values that point the chart at the registry
(tests/support/registry.py values_file: images.prefix, the Airflow repository, the pull
secret). The images are the ones this tier built: the trainer is built again by
scripts/images-build under the name these values give it (every step cached), the other two
are tagged with theirs, as `make images` with these values would (same Dockerfiles, same
cache). Then scripts/images-push (`make push`) pushes with REGISTRY_USERNAME/REGISTRY_PASSWORD.

The Docker engine treats a registry on 127.0.0.0/8 as insecure: it does not check the
registry's certificate. The certificate is checked here by the HTTPS client that reads the
manifests with the registry's CA (and by containerd on the control-plane tier's real node).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.images.docker import engine
from tests.support import paths, registry

PLATFORM = ("airflow", "mlflow", "trainer")
ACCEPT = {"Accept": ", ".join(["application/vnd.docker.distribution.manifest.v2+json",
                               "application/vnd.docker.distribution.manifest.list.v2+json",
                               "application/vnd.oci.image.manifest.v1+json",
                               "application/vnd.oci.image.index.v1+json"])}


def _script(name: str, *args: str, env: dict[str, str], timeout: float = 1800) -> subprocess.CompletedProcess:
    cmd = [str(paths.SCRIPTS_DIR / name), *args]
    if name == "images-push":
        cmd.insert(0, sys.executable)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
                          cwd=paths.REPO)


def _values_args(values: list[Path]) -> list[str]:
    return [a for v in values for a in ("--values", str(v))]


@pytest.fixture(scope="module")
def pushed(built_images, tmp_path_factory):
    """The registry, the values, what they name, the push's report and its wall time."""
    tmp = tmp_path_factory.mktemp("push")
    ca_cert, ca_key = registry.make_ca(tmp / "ca")
    with registry.running(tmp / "registry", ca_cert, ca_key, registry.free_port()) as reg:
        values = [registry.KIND_VALUES, registry.values_file(reg, tmp / "registry-values.yaml")]
        names = registry.images_refs().refs(values)
        assert names == {n: f"{reg.host}/mlops/{n}:dev" for n in PLATFORM}

        # make images VALUES=...: the trainer built again (cached), the others tagged
        t0 = time.monotonic()
        # its own report: the tier's report.tsv stays the one of the tier's names
        build = _script("images-build", *_values_args(values), "trainer",
                        env={**os.environ, "IMAGES_REPORT": str(tmp / "report.tsv")})
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
        assert f"{names['trainer']} built in" in build.stdout
        build_secs = time.monotonic() - t0
        for n in ("airflow", "mlflow"):
            engine.docker("tag", engine.image(n), names[n])

        env = {**os.environ, "REGISTRY_USERNAME": reg.username, "REGISTRY_PASSWORD": reg.password,
               "IMAGES_CACHE": str(tmp / "cache")}
        t0 = time.monotonic()
        push = _script("images-push", *_values_args(values), env=env)
        push_secs = time.monotonic() - t0
        assert push.returncode == 0, push.stdout[-3000:] + push.stderr[-3000:]
        rows = [line.split("\t") for line in (tmp / "cache" / "push.tsv").read_text().splitlines()]
        print(f"\ntrainer rebuilt under the values' name (cached) in {build_secs:.1f}s; pushed in {push_secs:.1f}s:")
        for _name, ref, secs, digest, size in rows:
            print(f"  {ref}: {float(secs):.1f}s, image {int(size) / 1e6:.0f} MB, {digest}")
        yield {"reg": reg, "values": values, "names": names, "rows": {r[0]: r for r in rows}, "tmp": tmp}


def test_push_with_credentials_pushes_what_the_values_name(pushed) -> None:
    reg, names, rows = pushed["reg"], pushed["names"], pushed["rows"]
    assert set(rows) == set(PLATFORM)
    status, _, body = reg.get("/v2/_catalog")
    assert status == 200 and json.loads(body)["repositories"] == ["mlops/airflow", "mlops/mlflow", "mlops/trainer"]
    for name, ref in names.items():
        repo, tag = ref.removeprefix(reg.host + "/").rsplit(":", 1)
        assert json.loads(reg.get(f"/v2/{repo}/tags/list")[2])["tags"] == [tag]
        # the manifest by the values' repository:tag, read over TLS verified with the CA
        status, headers, _ = reg.get(f"/v2/{repo}/manifests/{tag}", headers=ACCEPT)
        assert status == 200, (ref, status)
        assert headers["Docker-Content-Digest"] == rows[name][3], ref
        assert rows[name][1] == ref
        local = json.loads(engine.docker("image", "inspect", ref).stdout)[0]["RepoDigests"]
        assert f"{reg.host}/{repo}@{rows[name][3]}" in local


def test_pull_without_credentials_is_refused_with_401(pushed, tmp_path: Path) -> None:
    reg, ref = pushed["reg"], pushed["names"]["trainer"]
    repo, tag = ref.removeprefix(reg.host + "/").rsplit(":", 1)
    status, headers, _ = reg.get(f"/v2/{repo}/manifests/{tag}", auth=False, headers=ACCEPT)
    assert status == 401 and headers["Www-Authenticate"].startswith("Basic")
    # docker pull with no credentials: the registry answers 401 (its access log says so); the
    # engine, which treats 127.0.0.0/8 as insecure, then retries over plain HTTP, and reports
    # that attempt's error rather than the 401
    empty = tmp_path / "docker-config"
    empty.mkdir()
    log = reg.dir / "registry.log"
    before = len(log.read_text().splitlines())
    proc = engine.docker("--config", str(empty), "pull", ref, check=False)
    assert proc.returncode != 0
    access = [line for line in log.read_text().splitlines()[before:] if '" 401 ' in line or '" 200 ' in line]
    assert access and all('" 401 ' in line and '"docker/' in line for line in access), "\n".join(access)


def test_pull_with_credentials_gets_the_same_image(pushed) -> None:
    reg, ref = pushed["reg"], pushed["names"]["trainer"]
    image_id = json.loads(engine.docker("image", "inspect", ref).stdout)[0]["Id"]
    engine.docker("rmi", ref)
    with reg.docker_config() as cfg:
        engine.docker("--config", cfg, "pull", ref, timeout=600)
    assert json.loads(engine.docker("image", "inspect", ref).stdout)[0]["Id"] == image_id


def test_push_with_a_wrong_password_is_refused(pushed) -> None:
    env = {**os.environ, "REGISTRY_USERNAME": pushed["reg"].username, "REGISTRY_PASSWORD": "not-the-password",
           "IMAGES_CACHE": str(pushed["tmp"] / "cache")}
    proc = _script("images-push", *_values_args(pushed["values"]), "trainer", env=env, timeout=300)
    assert proc.returncode == 1
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("ERROR")]
    assert f"docker login {pushed['reg'].host} as mlops-push failed" in line
    assert "401" in proc.stderr or "unauthorized" in proc.stderr.lower()


def test_push_without_any_credentials_says_how_to_log_in(pushed, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD")}
    (tmp_path / "docker-config").mkdir()
    env.update(DOCKER_CONFIG=str(tmp_path / "docker-config"), IMAGES_CACHE=str(tmp_path / "cache"))
    proc = _script("images-push", *_values_args(pushed["values"]), "trainer", env=env, timeout=300)
    assert proc.returncode == 1
    assert f"log in first: `docker login {pushed['reg'].host}`" in proc.stderr, proc.stderr


def test_push_of_a_name_that_was_not_built(pushed, tmp_path: Path) -> None:
    """Values naming a tag nobody built: refused before any push, with the build command."""
    other = tmp_path / "other-tag.yaml"
    other.write_text("images:\n  trainer:\n    tag: not-built-1\n")
    env = {**os.environ, "REGISTRY_USERNAME": pushed["reg"].username, "REGISTRY_PASSWORD": pushed["reg"].password,
           "IMAGES_CACHE": str(tmp_path / "cache")}
    proc = _script("images-push", *_values_args([*pushed["values"], other]), "trainer", env=env, timeout=300)
    assert proc.returncode == 1
    assert f"not in the Docker engine: {pushed['reg'].host}/mlops/trainer:not-built-1" in proc.stderr
    assert "make images VALUES=" in proc.stderr


def test_push_tier_images_finds_them_there(pushed) -> None:
    """The control-plane tier's helper: the same images under the same names are not pushed again."""
    reg = pushed["reg"]
    assert all(registry.holds(reg, ref) for ref in pushed["names"].values())
    assert not registry.holds(reg, f"{reg.host}/mlops/trainer:never-pushed")
    t0 = time.monotonic()
    assert registry.push_tier_images(reg, workdir=pushed["tmp"]) == pushed["names"]
    print(f"\npush_tier_images with every image already there: {time.monotonic() - t0:.1f}s")
