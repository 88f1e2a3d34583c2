"""Stand-ins for docker, kind, kubectl and helm that let scripts/kind-up run end to end here.

Test double (there is no Docker engine and no cluster on this machine), used only by
tests/scripts/test_kind_up_standin.py. Every call is appended to $STANDIN/calls.jsonl. The
stand-ins keep a tiny cluster state under $STANDIN (nodes' taints and GPU capacity, namespaces,
Secrets as key files, applied manifests). Whatever can run for real does:
- Secrets are built and every `-o go-template`/`-o yaml` output is produced by the real kubectl,
  offline (`kubectl create secret generic ... --dry-run=client`);
- `helm template` is the real helm on the umbrella chart of this checkout (official chart
  included, as in every render test);
- the git server is the real images/git-server entrypoint + sshd on 127.0.0.1, started when
  kind-up waits for its rollout with the host keys and authorized keys from the Secrets kind-up
  created, and `kubectl port-forward` reports its port.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

STATE = Path(os.environ["STANDIN"])
REAL_KUBECTL = os.environ["STANDIN_REAL_KUBECTL"]
REAL_HELM = os.environ["STANDIN_REAL_HELM"]
UMBRELLA_CHART = os.environ["STANDIN_UMBRELLA_CHART"]
ENTRYPOINT = os.environ["STANDIN_GIT_ENTRYPOINT"]
IMAGE_ID = "sha256:5f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff"


def record(tool: str, args: list[str]) -> None:
    with open(STATE / "calls.jsonl", "a") as f:
        f.write(json.dumps({"tool": tool, "args": args}) + "\n")


def flag(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def load(name: str, default):
    p = STATE / name
    return json.loads(p.read_text()) if p.exists() else default


def save(name: str, value) -> None:
    (STATE / name).write_text(json.dumps(value))


# --- docker ----------------------------------------------------------------------------------


def docker(args: list[str]) -> int:
    if args[:1] == ["info"]:
        print("8589934592 4 28.2.2")
    elif args[:1] == ["build"]:
        print("sha256:built")
    elif args[:2] == ["image", "inspect"]:
        fmt = flag(args, "-f")
        print("linux/amd64" if "Os" in (fmt or "") else IMAGE_ID)
    elif args[:1] == ["inspect"]:
        print("true")
    elif args[:1] in (["exec"], ["start"]):
        pass
    else:
        print(f"standin docker: unexpected {args}", file=sys.stderr)
        return 1
    return 0


# --- kind -------------------------------------------------------------------------------------


def kind(args: list[str]) -> int:
    if args[:1] == ["version"]:
        print("kind v0.31.0 go1.26.8 linux/amd64")
    elif args[:2] == ["get", "clusters"]:
        if load("cluster.json", None):
            print("mlops")
    elif args[:2] == ["get", "nodes"]:
        print("mlops-control-plane\nmlops-worker")
    elif args[:2] == ["create", "cluster"]:
        config = yaml.safe_load(Path(flag(args, "--config")).read_text())
        save("cluster.json", config)
        save(
            "taints.json",
            {"mlops-control-plane": ["node-role.kubernetes.io/control-plane"], "mlops-worker": []},
        )
        Path(flag(args, "--kubeconfig")).write_text("apiVersion: v1\nkind: Config\n")
    elif args[:2] == ["export", "kubeconfig"]:
        Path(flag(args, "--kubeconfig")).write_text("apiVersion: v1\nkind: Config\n")
    elif args[:2] == ["load", "docker-image"]:
        print(f"Image: {args[2]} loaded")
    else:
        print(f"standin kind: unexpected {args}", file=sys.stderr)
        return 1
    return 0


# --- kubectl ----------------------------------------------------------------------------------


def _secret_dir(name: str) -> Path:
    return STATE / "secrets" / name


def _real_secret(name: str, files: list[str], output: list[str]) -> int:
    """Render a Secret with the real kubectl (offline) from key files."""
    cmd = [
        REAL_KUBECTL,
        "create",
        "secret",
        "generic",
        name,
        "-n",
        "mlops",
        *files,
        "--dry-run=client",
        *output,
    ]
    return subprocess.run(cmd, env={**os.environ, "KUBECONFIG": "/dev/null"}).returncode


def _start_git_server() -> None:
    info = load("git-server.json", None)
    if info and _answers(info["port"]):
        return
    root = STATE / "git-server"
    (root / "host-keys").mkdir(parents=True, exist_ok=True)
    (root / "authorized").mkdir(parents=True, exist_ok=True)
    for key in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"):
        (root / "host-keys" / key).write_bytes((_secret_dir("git-server-host-keys") / key).read_bytes())
    (root / "authorized" / "authorized_keys").write_bytes(
        (_secret_dir("git-server-authorized-keys") / "authorized_keys").read_bytes()
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "GIT_SERVER_ROOT": str(root / "srv" / "git"),
        "GIT_SERVER_STATE_DIR": str(root / "run"),
        "GIT_SERVER_HOST_KEYS_DIR": str(root / "host-keys"),
        "GIT_SERVER_AUTHORIZED_KEYS": str(root / "authorized" / "authorized_keys"),
        "GIT_SERVER_PORT": str(port),
        "GIT_SERVER_LISTEN": "127.0.0.1",
    }
    log = open(root / "sshd.log", "a")  # noqa: SIM115 - inherited by the server
    proc = subprocess.Popen(
        ["bash", ENTRYPOINT], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    for _ in range(100):
        if _answers(port):
            break
        time.sleep(0.1)
    save("git-server.json", {"port": port, "pid": proc.pid})


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def kubectl(args: list[str]) -> int:
    # drop global flags
    rest: list[str] = []
    i = 0
    while i < len(args):
        if args[i] in ("--kubeconfig", "-n", "--namespace"):
            i += 2
            continue
        rest.append(args[i])
        i += 1
    verb = rest[:2]
    taints = load("taints.json", {})
    if rest[:2] == ["version", "--client"]:
        print("clientVersion:\n  gitVersion: v1.35.0")
    elif rest[:1] == ["wait"] or rest[:2] == ["rollout", "status"]:
        if rest[:2] == ["rollout", "status"] and "deployment/git-server" in rest:
            _start_git_server()
    elif verb == ["get", "node"]:
        node, out = rest[2], flag(rest, "-o") or ""
        if "taints" in out:
            print(" ".join(taints.get(node, [])))
        elif "kubeletVersion" in out:
            print("v1.35.0", end="")
        elif "allocatable" in out:
            print(load("gpu.json", {}).get(node, ""), end="")
    elif verb == ["taint", "node"]:
        node, spec = rest[2], rest[3]
        key = spec.split("=")[0].split(":")[0]
        if spec.endswith("-"):
            taints[node] = [t for t in taints.get(node, []) if t != key]
        elif key not in taints.get(node, []):
            taints.setdefault(node, []).append(key)
        save("taints.json", taints)
    elif verb == ["label", "node"] or verb == ["label", "secret"]:
        pass
    elif verb == ["patch", "node"]:
        patch = json.loads(flag(rest, "-p"))
        assert "--subresource=status" in rest and flag(rest, "--type") == "json", rest
        (op,) = patch
        assert op["op"] == "add" and op["path"] == "/status/capacity/nvidia.com~1gpu", op
        gpu = load("gpu.json", {})
        gpu[rest[2]] = op["value"]
        save("gpu.json", gpu)
    elif verb == ["get", "deployment"]:
        return 0 if load("applied-urls.json", []) else 1
    elif verb == ["get", "endpointslices"]:
        print("10.244.0.7")
    elif verb == ["label", "namespace"]:
        if rest[2] not in load("namespaces.json", []):
            print(f'Error from server (NotFound): namespaces "{rest[2]}" not found', file=sys.stderr)
            return 1
        labels = load("namespace-labels.json", {})
        for pair in (a for a in rest[3:] if "=" in a and not a.startswith("-")):
            key, _, value = pair.partition("=")
            labels.setdefault(rest[2], {})[key] = value
        save("namespace-labels.json", labels)
    elif verb == ["get", "namespace"]:
        return 0 if rest[2] in load("namespaces.json", []) else 1
    elif verb == ["create", "namespace"]:
        save("namespaces.json", [*load("namespaces.json", []), rest[2]])
    elif verb == ["get", "secret"]:
        d = _secret_dir(rest[2])
        if not d.is_dir():
            print(f'Error from server (NotFound): secrets "{rest[2]}" not found', file=sys.stderr)
            return 1
        files = [f"--from-file={p.name}={p}" for p in sorted(d.iterdir())]
        out = flag(rest, "-o")
        return _real_secret(rest[2], files, ["-o", out] if out else ["-o", "name"])
    elif rest[:3] == ["create", "secret", "generic"]:
        name = rest[3]
        specs = [a.split("=", 1)[1] for a in rest if a.startswith("--from-file=")]
        if "--dry-run=client" in rest:
            return _real_secret(name, [f"--from-file={s}" for s in specs], ["-o", flag(rest, "-o") or "yaml"])
        d = _secret_dir(name)
        d.mkdir(parents=True)
        for spec in specs:
            key, path = spec.split("=", 1)
            (d / key).write_bytes(
                sys.stdin.buffer.read() if path == "/dev/stdin" else Path(path).read_bytes()
            )
    elif verb == ["apply", "-f"]:
        source = rest[2]
        if source.startswith("https://"):
            save("applied-urls.json", [*load("applied-urls.json", []), source])
            return 0
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            if doc["kind"] == "Secret":
                d = _secret_dir(doc["metadata"]["name"])
                d.mkdir(parents=True, exist_ok=True)
                for key, value in (doc.get("data") or {}).items():
                    (d / key).write_bytes(base64.b64decode(value))
            applied = load("applied.json", [])
            applied.append({"kind": doc["kind"], "name": doc["metadata"]["name"], "object": doc})
            save("applied.json", applied)
    elif rest[:1] == ["port-forward"]:
        info = load("git-server.json", None)
        assert info and rest[-2:] == ["svc/git-server", ":22"], (info, rest)
        with open(STATE / "port-forward.pids", "a") as f:
            f.write(f"{os.getpid()}\n")
        print(f"Forwarding from 127.0.0.1:{info['port']} -> 2222", flush=True)
        time.sleep(600)
    elif verb == ["get", "pods"]:
        if "--no-headers" in rest:
            print("mlops-scheduler-0   2/2   Running   0   1m")
        # -o go-template (unready pods): none
    elif verb in (["get", "events"], ["describe", "pod"], ["logs"]):
        pass
    else:
        print(f"standin kubectl: unexpected {rest}", file=sys.stderr)
        return 1
    return 0


# --- helm -------------------------------------------------------------------------------------


def helm(args: list[str]) -> int:
    if args[:1] == ["version"]:
        print("v3.20.2")
    elif args[:2] == ["repo", "add"]:
        pass
    elif args[:2] == ["dependency", "build"]:
        charts = Path(args[2]) / "charts"
        charts.mkdir(exist_ok=True)
        (charts / "airflow-1.20.0.tgz").write_text("stand-in")
    elif args[:1] == ["template"]:
        real = [REAL_HELM, "template", args[1], UMBRELLA_CHART, *args[3:]]
        return subprocess.run(real).returncode
    elif args[:2] == ["list", "-n"]:
        pass
    elif args[:2] == ["upgrade", "--install"]:
        known_hosts = flag(args, "--set-file").split("=", 1)[1]
        save("helm-upgrade.json", {"args": args, "knownHosts": Path(known_hosts).read_text()})
        for f in [args[i + 1] for i, a in enumerate(args) if a == "-f"]:
            assert Path(f).exists(), f
        print("Release has been upgraded.\nSTATUS: deployed\nREVISION: 1")
    else:
        print(f"standin helm: unexpected {args}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    tool, args = sys.argv[1], sys.argv[2:]
    record(tool, args)
    return {"docker": docker, "kind": kind, "kubectl": kubectl, "helm": helm}[tool](args)


if __name__ == "__main__":
    sys.exit(main())
