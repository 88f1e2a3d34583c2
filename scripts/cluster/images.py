"""The real node's two local images, written as one OCI image archive (``ctr images import``).

Both hold the one static program of tools/control-plane/nodeimage at ``/nodeimage``:

- ``localhost/mlops-tier/pause:1``: the pod sandbox (containerd's ``sandbox_image``);
- ``localhost/mlops-tier/probe:1``: what the real-node tests run (HTTP server and client, DNS
  lookup, a failing exit).

The archive is byte-for-byte reproducible (fixed mtimes and owners), so its digests only change
with the program.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

PAUSE_IMAGE = "localhost/mlops-tier/pause:1"
PROBE_IMAGE = "localhost/mlops-tier/probe:1"
PROGRAM = "nodeimage"


def _blob(blobs: dict[str, bytes], data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def _build(program: Path, labels: dict[str, str] | None = None) -> tuple[dict[str, bytes], dict[str, dict]]:
    """(blobs by digest, manifest descriptor by image name) of both images (with ``labels`` in
    their configs: another image ID)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as layer:
        _tar_add(layer, PROGRAM, program.read_bytes(), mode=0o755)
    layer_tar = raw.getvalue()
    layer_gz = gzip.compress(layer_tar, mtime=0)
    blobs: dict[str, bytes] = {}
    layer_digest = _blob(blobs, layer_gz)
    manifests: dict[str, dict] = {}
    for name, entrypoint in ((PAUSE_IMAGE, [f"/{PROGRAM}", "pause"]), (PROBE_IMAGE, [f"/{PROGRAM}"])):
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": entrypoint, "User": "65535:65535", "WorkingDir": "/", **({"Labels": labels} if labels else {})},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
        }
        config_bytes = json.dumps(config, sort_keys=True).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _blob(blobs, config_bytes),
                "size": len(config_bytes),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": len(layer_gz),
            }],
        }
        manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
        manifests[name] = {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": _blob(blobs, manifest_bytes),
            "size": len(manifest_bytes),
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
        }
    return blobs, manifests


def write_archive(program: Path, out: Path) -> list[str]:
    """Write the OCI archive of both images to ``out``; returns their names."""
    blobs, manifests = _build(program)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": list(manifests.values())}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _tar_add(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        _tar_add(tar, "index.json", json.dumps(index, sort_keys=True).encode())
        for digest, data in sorted(blobs.items()):
            _tar_add(tar, "blobs/sha256/" + digest.split(":", 1)[1], data)
    tmp.replace(out)
    return list(manifests)


def push(program: Path, image: str, registry_url: str, authorization: str, ca_cert: Path, repository: str,
         labels: dict[str, str] | None = None) -> str:
    """Push ``image`` (PAUSE_IMAGE or PROBE_IMAGE) to ``<registry_url>/<repository>`` with the
    registry HTTP API (blob uploads, then the manifest); returns the manifest digest.

    ``labels`` (in the image config) give the pushed image an ID of its own. Pulled onto the real
    node with the ID of an imported image, it takes that image's name away in containerd 1.6's
    CRI image store: the kubelet then answers ErrImageNeverPull for localhost/mlops-tier/probe:1
    while ``ctr images ls`` still lists it."""
    import ssl
    import urllib.request

    blobs, manifests = _build(program, labels)
    desc = manifests[image]
    manifest = blobs[desc["digest"]]
    ctx = ssl.create_default_context(cafile=str(ca_cert))
    name, tag = repository.rsplit(":", 1)

    def call(method: str, url: str, data: bytes | None = None, ctype: str | None = None):
        req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": authorization})
        if ctype:
            req.add_header("Content-Type", ctype)
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            return resp.status, resp.headers

    parsed = json.loads(manifest)
    for digest in [parsed["config"]["digest"], *(layer["digest"] for layer in parsed["layers"])]:
        _, headers = call("POST", f"{registry_url}/v2/{name}/blobs/uploads/")
        location = headers["Location"]
        if location.startswith("/"):
            location = registry_url + location
        sep = "&" if "?" in location else "?"
        call("PUT", f"{location}{sep}digest={digest}", blobs[digest], "application/octet-stream")
    call("PUT", f"{registry_url}/v2/{name}/manifests/{tag}", manifest, desc["mediaType"])
    return desc["digest"]
