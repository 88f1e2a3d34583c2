"""Extra values some values files need to render, because they come from the command line.

values/kind.yaml cannot hold the git server's known_hosts: the host key is generated at
kind-up and passed with `--set-file airflow.dags.gitSync.knownHosts=<file>`. Tests render it
with `kind_overlay()`, an overlay carrying a known_hosts line of a host key made here with
ssh-keygen (or a fixed public key when ssh-keygen is missing: only the format matters).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from . import paths

KIND_GIT_HOST = "git-server.mlops.svc.cluster.local"
# A syntactically valid ed25519 public key (not any real host's).
_FALLBACK_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@functools.lru_cache(maxsize=1)
def kind_known_hosts() -> str:
    """A known_hosts line for the kind git server, with a freshly generated host key."""
    if shutil.which("ssh-keygen"):
        tmp = Path(tempfile.mkdtemp(prefix="kind-hostkey-"))
        key = tmp / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)], check=True)
        pub = " ".join(key.with_suffix(".pub").read_text().split()[:2])
    else:
        pub = _FALLBACK_KEY
    return f"{KIND_GIT_HOST} {pub}\n"


@functools.lru_cache(maxsize=1)
def kind_overlay() -> Path:
    """A values file with what kind-up passes on the command line."""
    path = Path(tempfile.mkdtemp(prefix="kind-overlay-")) / "kind-overlay.yaml"
    path.write_text(yaml.safe_dump({"airflow": {"dags": {"gitSync": {"knownHosts": kind_known_hosts()}}}}))
    return path


def with_overlays(values_file: Path) -> list[Path]:
    """The values files to pass to helm for `values_file` (itself plus its overlays)."""
    if values_file.resolve() == (paths.VALUES_DIR / "kind.yaml").resolve():
        return [values_file, kind_overlay()]
    return [values_file]
