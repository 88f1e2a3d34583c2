"""A private registry with authentication and TLS, standing in for Nexus: the CNCF distribution
registry (``bin/registry``, pinned by tools/control-plane/registry, built by
``make cluster-tools``) on 127.0.0.1, with htpasswd (bcrypt) authentication and a serving
certificate signed by a CA you give it. Python standard library only, so scripts/cluster-up can
run it with any python3.

From Python (the repository root on ``sys.path``)::

    from scripts.cluster import registry

    reg = registry.start(state_dir, ca_cert, ca_key, port)   # reuses one already running there
    reg.host          # "127.0.0.1:<port>": image names are f"{reg.host}/mlops/trainer:dev"
    reg.username, reg.password   # generated once per state directory, never printed
    reg.ca_cert       # the CA that signed the serving certificate (give it to the client)
    reg.dockerconfigjson()       # a kubernetes.io/dockerconfigjson payload for these credentials
    reg.containerd_hosts_toml()  # containerd's hosts.toml: pull over TLS verified with ca_cert
    reg.chart_values("mlops")    # values that point the chart's images and pull secret here
    with reg.docker_config() as cfg:  # a throw-away DOCKER_CONFIG logged in to the registry
        subprocess.run(["docker", "--config", cfg, "push", ref], check=True)
    registry.stop(state_dir)     # SIGTERM (SIGKILL after `timeout`) by PID; True if one ran

    with registry.running(state_dir, ca_cert, ca_key, port) as reg:  # stopped on exit
        ...

From a shell (``python3 -m scripts.cluster.registry``, from the repository root)::

    start --dir D --port P [--ca-cert C --ca-key K] [--san IP|DNS ...]  # prints JSON: host,
                    username, ca_cert, dir, pid, credentials (path of the 0600 file with the
                    password); without --ca-cert a CA of its own is made in D/ca
    stop --dir D    status --dir D (exit 0 when it answers)
    dockerconfigjson --dir D       (prints the payload: it holds the password)

State directory (created; keep it out of git): ``config.yml`` (the registry's configuration),
``htpasswd``, ``credentials.json`` (user and password, mode 0600), ``tls/`` (serving key and
certificate, signed for 127.0.0.1, localhost and every ``--san``), ``ca.crt`` (the CA's
certificate), ``data/`` (blobs and manifests: kept across restarts), ``registry.pid``,
``registry.log`` (``data_dir=`` puts the data elsewhere, e.g. kept across sessions).

What the registry does: the Docker Registry HTTP API v2 / OCI distribution API; every request
needs the user's password (``/v2/`` without it answers 401 with a ``Basic`` challenge); TLS
only, no plain HTTP; deleting manifests is allowed (``storage.delete``). It listens on
``host:port`` only (127.0.0.1 by default). A Docker engine treats every registry on
127.0.0.0/8 as insecure (it accepts its certificate without checking it); containerd, the
kubelet's runtime and any HTTPS client given ``ca_cert`` verify it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CLUSTER_BIN", REPO / "bin"))
USERNAME = "mlops-push"
REALM = "mlops-registry"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class RegistryError(RuntimeError):
    """The registry could not be started, reached or stopped (the message says why)."""


def say(msg: str) -> None:
    print(f"registry: {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Registry:
    """A running registry: where it listens, its credentials and the CA that signed its certificate."""

    host: str  # "127.0.0.1:<port>", the registry part of an image name
    username: str
    password: str
    ca_cert: Path
    dir: Path
    pid: int

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    def auth(self) -> str:
        """The value of an ``Authorization`` header for these credentials."""
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def dockerconfigjson(self) -> str:
        """The ``.dockerconfigjson`` of a ``kubernetes.io/dockerconfigjson`` Secret (and of a
        Docker client's config.json) that logs in to this registry."""
        auth = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return json.dumps({"auths": {self.host: {"username": self.username, "password": self.password,
                                                 "auth": auth}}})

    def chart_values(self, path: str = "mlops", secret_name: str = "mlops-registry") -> dict:
        """Values of the umbrella chart that take our images from ``<host>/<path>`` and pull
        them with these credentials: the platform's images (``images.prefix``) and the official
        chart's Airflow image (``airflow.images.airflow.repository``); the chart renders the
        pull secret ``secret_name`` (``registry.username``/``password``) in the release, task
        and serving namespaces, and the Airflow pods name it (``airflow.imagePullSecrets``).
        Tags stay those of the other values files."""
        prefix = f"{self.host}/{path.strip('/')}" if path.strip("/") else self.host
        return {
            "images": {"prefix": prefix},
            "registry": {"enabled": True, "server": self.host, "username": self.username,
                         "password": self.password, "secretName": secret_name},
            "airflow": {"images": {"airflow": {"repository": f"{prefix}/airflow"}},
                        "imagePullSecrets": [secret_name]},
        }

    def containerd_hosts_toml(self) -> str:
        """containerd's ``hosts.toml`` for this registry (the file
        ``<config_path>/<host:port>/hosts.toml`` of its CRI registry ``config_path``): pulls over
        TLS verified with ``ca_cert``. The credentials come from the pod's pull secret."""
        return (f'server = "https://{self.host}"\n\n[host."https://{self.host}"]\n'
                f'  capabilities = ["pull", "resolve"]\n  ca = "{self.ca_cert}"\n')

    @contextlib.contextmanager
    def docker_config(self) -> Iterator[str]:
        """A temporary Docker client configuration directory logged in to this registry
        (``docker --config DIR`` or ``DOCKER_CONFIG=DIR``); removed on exit."""
        with tempfile.TemporaryDirectory(prefix="registry-docker-") as tmp:
            cfg = Path(tmp) / "config.json"
            cfg.write_text(self.dockerconfigjson())
            cfg.chmod(0o600)
            yield tmp

    def get(self, path: str, *, auth: bool = True, method: str = "GET",
            headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
        """An HTTPS request to the registry, verified against ``ca_cert``: (status, headers, body).
        HTTP errors are returned, not raised."""
        req = urllib.request.Request(self.url + path, method=method, headers=dict(headers or {}))
        if auth:
            req.add_header("Authorization", self.auth())
        try:
            with urllib.request.urlopen(req, context=ssl_context(self.ca_cert), timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()


def ssl_context(ca_cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_cert))


# --- state directory -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    dir: Path

    config = property(lambda s: s.dir / "config.yml")
    htpasswd = property(lambda s: s.dir / "htpasswd")
    credentials = property(lambda s: s.dir / "credentials.json")
    tls = property(lambda s: s.dir / "tls")
    cert = property(lambda s: s.dir / "tls" / "registry.crt")
    key = property(lambda s: s.dir / "tls" / "registry.key")
    ca_cert = property(lambda s: s.dir / "ca.crt")
    data = property(lambda s: s.dir / "data")
    pidfile = property(lambda s: s.dir / "registry.pid")
    log = property(lambda s: s.dir / "registry.log")
    state = property(lambda s: s.dir / "state.json")


def _openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RegistryError(f"openssl {args[0]} failed: {proc.stderr.strip()[-500:]}")


def make_ca(directory: Path, name: str = "mlops-registry-test-ca") -> tuple[Path, Path]:
    """A new CA (EC P-256, 10 years) in ``directory``: (ca.crt, ca.key). For tests and for a
    registry started without one; the control-plane tier passes its own."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.crt", directory / "ca.key"
    if cert.exists() and key.exists():
        return cert, key
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    key.chmod(0o600)
    _openssl("req", "-x509", "-new", "-key", str(key), "-sha256", "-days", "3650", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-out", str(cert))
    return cert, key


def _san(value: str) -> str:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
        return f"IP:{value}"
    except OSError:
        return f"DNS:{value}"


def _serving_certificate(layout: Layout, ca_cert: Path, ca_key: Path, names: Sequence[str]) -> None:
    """Key and certificate for ``names`` signed by the CA; made again when the CA or the names
    changed (the names are recorded in the certificate's SAN, the CA in ca.crt)."""
    layout.tls.mkdir(parents=True, exist_ok=True)
    sans = ",".join(dict.fromkeys(_san(n) for n in names))
    stamp = layout.tls / "names"
    same_ca = layout.ca_cert.exists() and layout.ca_cert.read_bytes() == ca_cert.read_bytes()
    if same_ca and layout.cert.exists() and layout.key.exists() and stamp.exists() and stamp.read_text() == sans:
        return
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(layout.key))
    layout.key.chmod(0o600)
    csr, ext = layout.tls / "registry.csr", layout.tls / "registry.ext"
    _openssl("req", "-new", "-key", str(layout.key), "-subj", "/CN=mlops-registry", "-out", str(csr))
    ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   f"extendedKeyUsage=serverAuth\nsubjectAltName={sans}\n")
    # a random serial: -CAcreateserial would write a .srl file beside the caller's CA
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-set_serial", str(secrets.randbits(63)), "-sha256", "-days", "365", "-extfile", str(ext),
             "-out", str(layout.cert))
    csr.unlink()
    ext.unlink()
    shutil.copyfile(ca_cert, layout.ca_cert)
    stamp.write_text(sans)


def _credentials(layout: Layout, bin_dir: Path) -> tuple[str, str]:
    """The user and password of this state directory (generated once, kept in credentials.json,
    mode 0600) and its htpasswd line (bcrypt, bin/registry-htpasswd)."""
    if layout.credentials.exists():
        data = json.loads(layout.credentials.read_text())
        user, password = data["username"], data["password"]
    else:
        user, password = USERNAME, secrets.token_urlsafe(24)
        fd = os.open(layout.credentials, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"username": user, "password": password}, f)
    if not layout.htpasswd.exists():
        tool = bin_dir / "registry-htpasswd"
        if not os.access(tool, os.X_OK):
            raise RegistryError(f"{tool} is missing: run `make cluster-tools` (it builds registry and registry-htpasswd)")
        proc = subprocess.run([str(tool), user], input=password + "\n", capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RegistryError(f"registry-htpasswd failed: {proc.stderr.strip()}")
        fd = os.open(layout.htpasswd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(proc.stdout)
    return user, password


def _config(layout: Layout, listen: str, data: Path) -> dict:
    """The registry's configuration (JSON is YAML: the registry reads it as its config.yml)."""
    return {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(data)}, "delete": {"enabled": True},
                    "maintenance": {"uploadpurging": {"enabled": False}}},
        "http": {"addr": listen, "secret": secrets.token_hex(16), "relativeurls": False,
                 "tls": {"certificate": str(layout.cert), "key": str(layout.key)},
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "auth": {"htpasswd": {"realm": REALM, "path": str(layout.htpasswd)}},
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
    }


# --- processes -------------------------------------------------------------------------------------


def _ours(pid: int, layout: Layout) -> bool:
    """The process is alive, runs a registry and has this state directory's config on its command line."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and Path(args[0].decode()).name == "registry" and str(layout.config).encode() in args


def _pid(layout: Layout) -> int | None:
    try:
        pid = int(layout.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _ours(pid, layout) else None


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _exited(pid: int, timeout: float) -> None:
    """Wait (never kill) until ``pid`` has no files left: gone, or a zombie. An exiting process
    loses its command line (what ``_ours`` reads) before its files, so its listening socket can
    outlive the moment it stops looking like ours."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)


def _gone(pid: int, layout: Layout, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _ours(pid, layout):
            _exited(pid, 5)
            return True
        time.sleep(0.05)
    return not _ours(pid, layout)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def _port_holder(host: str, port: int) -> str | None:
    """Who listens on host:port ("pid name" when ss can tell), None when the port is free.

    A listening socket is what makes the port taken, so ss's list of listeners decides; a test
    connection decides only where ss cannot run: on 127.0.0.1 a connect to a free port of the
    ephemeral range can connect to itself (the kernel picks that port as its source) and would
    report a free port as taken."""
    out = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["ss", "-Hltnp", f"( sport = :{port} )"], capture_output=True, text=True,
                             timeout=5, check=True).stdout
    if out is not None:
        if not out.strip():
            return None
        return out.split("users:((", 1)[1].split(")")[0] if "pid=" in out else "an unknown process"
    with socket.socket() as s:
        s.settimeout(0.5)
        if s.connect_ex((host, port)) != 0:
            return None
    return "an unknown process"


def _answers(reg: Registry) -> bool:
    """Ready: /v2/ answers 401 with the Basic challenge without credentials and 200 with them."""
    try:
        status, headers, _ = reg.get("/v2/", auth=False, timeout=2)
        if status != 401 or not headers.get("Www-Authenticate", headers.get("WWW-Authenticate", "")).startswith("Basic"):
            return False
        return reg.get("/v2/", timeout=2)[0] == 200
    except (OSError, ssl.SSLError):
        return False


def load(state_dir: Path) -> Registry | None:
    """The registry running for ``state_dir`` (None when none runs)."""
    layout = Layout(Path(state_dir).resolve())
    pid = _pid(layout)
    if pid is None:
        return None
    state = json.loads(layout.state.read_text())
    creds = json.loads(layout.credentials.read_text())
    return Registry(host=state["host"], username=creds["username"], password=creds["password"],
                    ca_cert=layout.ca_cert, dir=layout.dir, pid=pid)


def start(state_dir: Path, ca_cert: Path, ca_key: Path, port: int, *, host: str = "127.0.0.1",
          sans: Sequence[str] = (), bin_dir: Path | None = None, timeout: float = START_TIMEOUT,
          command_prefix: Sequence[str] = (), data_dir: Path | None = None) -> Registry:
    """Start the registry of ``state_dir`` on ``host:port`` (or return the one already running
    there on that address), wait until it answers with TLS and authentication, and return it.

    ``sans``: more names (IP addresses or DNS names) for the serving certificate, beside
    ``host``, 127.0.0.1 and localhost. ``command_prefix``: run the registry under this command
    (for example ``nsenter --net=...``; it must exec the registry so that the PID recorded is
    the registry's). ``data_dir``: where the blobs and manifests live (default
    ``state_dir/data``); a directory kept outside a per-session state directory keeps what was
    pushed for the next session (one registry at a time per data directory). Raises
    RegistryError with the reason (and the log's last lines)."""
    layout = Layout(Path(state_dir).resolve())
    layout.dir.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(bin_dir) if bin_dir else BIN
    ca_cert, ca_key = Path(ca_cert).resolve(), Path(ca_key).resolve()
    for f in (ca_cert, ca_key):
        if not f.is_file():
            raise RegistryError(f"CA file {f} does not exist")
    if not 1024 <= int(port) <= 65535:
        raise RegistryError(f"port {port} is not between 1024 and 65535")
    listen = f"{host}:{port}"

    running = load(layout.dir)
    if running is not None:
        same_data = json.loads(layout.config.read_text())["storage"]["filesystem"]["rootdirectory"] == str(
            Path(data_dir).resolve() if data_dir else layout.data)
        if running.host == listen and running.ca_cert.read_bytes() == ca_cert.read_bytes() and same_data \
                and _answers(running):
            return running
        say(f"restarting the registry of {layout.dir} (pid {running.pid}: other address, CA or data, or not answering)")
        stop(layout.dir)

    exe = bin_dir / "registry"
    if not os.access(exe, os.X_OK):
        raise RegistryError(f"{exe} is missing: run `make cluster-tools` (builds the pinned registry)")
    holder = _port_holder(host, int(port))
    if holder is not None:
        raise RegistryError(f"{listen} is already in use by {holder}: choose another port")

    _serving_certificate(layout, ca_cert, ca_key, [host, "127.0.0.1", "localhost", *sans])
    user, password = _credentials(layout, bin_dir)
    data = Path(data_dir).resolve() if data_dir else layout.data
    data.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(json.dumps(_config(layout, listen, data), indent=2) + "\n")
    layout.config.chmod(0o600)  # holds the http secret
    layout.state.write_text(json.dumps({"host": listen}) + "\n")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "OTEL_"))}
    env["OTEL_TRACES_EXPORTER"] = "none"  # no tracing exporter: it would try a collector on localhost
    with open(layout.log, "ab") as log:
        proc = subprocess.Popen([*command_prefix, str(exe), "serve", str(layout.config)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    layout.pidfile.write_text(f"{proc.pid}\n")
    reg = Registry(host=listen, username=user, password=password, ca_cert=layout.ca_cert, dir=layout.dir, pid=proc.pid)
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            layout.pidfile.unlink(missing_ok=True)
            raise RegistryError(f"the registry exited with status {proc.returncode} at start "
                                f"(log {layout.log}):\n{_tail(layout.log)}")
        if _answers(reg):
            say(f"{listen} ready in {time.monotonic() - t0:.1f}s (pid {proc.pid}, state {layout.dir})")
            return reg
        time.sleep(0.1)
    stop(layout.dir)
    raise RegistryError(f"the registry did not answer on https://{listen}/v2/ within {timeout:.0f}s "
                        f"(log {layout.log}):\n{_tail(layout.log)}")


def stop(state_dir: Path, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the registry of ``state_dir`` by its PID: SIGTERM, SIGKILL after ``timeout``
    seconds. True when one was running. The data, the credentials and the log stay."""
    layout = Layout(Path(state_dir).resolve())
    pid = _pid(layout)
    layout.pidfile.unlink(missing_ok=True)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _gone(pid, layout, timeout):
        say(f"pid {pid} did not stop within {timeout:.0f}s: SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not _gone(pid, layout, 5):
            raise RegistryError(f"the registry (pid {pid}) is still running after SIGKILL")
    return True


@contextlib.contextmanager
def running(state_dir: Path, ca_cert: Path, ca_key: Path, port: int, **kw) -> Iterator[Registry]:
    """``start`` ... ``stop``, also after an exception."""
    reg = start(state_dir, ca_cert, ca_key, port, **kw)
    try:
        yield reg
    finally:
        stop(state_dir)


# --- command line ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m scripts.cluster.registry", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start (or reuse) the registry of --dir; prints JSON without the password")
    s.add_argument("--dir", type=Path, required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--ca-cert", type=Path)
    s.add_argument("--ca-key", type=Path)
    s.add_argument("--san", action="append", default=[], help="another IP or DNS name of the certificate")
    for name, text in (("stop", "stop the registry of --dir"), ("status", "exit 0 when the registry of --dir answers"),
                       ("dockerconfigjson", "print the dockerconfigjson of --dir's credentials")):
        sub.add_parser(name, help=text).add_argument("--dir", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "start":
            if (args.ca_cert is None) != (args.ca_key is None):
                ap.error("--ca-cert and --ca-key go together")
            ca_cert, ca_key = (args.ca_cert, args.ca_key) if args.ca_cert else make_ca(args.dir.resolve() / "ca")
            reg = start(args.dir, ca_cert, ca_key, args.port, host=args.host, sans=args.san)
            print(json.dumps({"host": reg.host, "username": reg.username, "ca_cert": str(reg.ca_cert),
                              "dir": str(reg.dir), "pid": reg.pid,
                              "credentials": str(Layout(reg.dir).credentials)}, indent=2))
        elif args.cmd == "stop":
            say("stopped" if stop(args.dir) else f"none running for {args.dir}")
        elif args.cmd == "status":
            reg = load(args.dir)
            if reg is None or not _answers(reg):
                say(f"none answering for {args.dir}")
                return 1
            say(f"{reg.host} answers (pid {reg.pid})")
        elif args.cmd == "dockerconfigjson":
            reg = load(args.dir)
            if reg is None:
                say(f"none running for {args.dir}")
                return 1
            print(reg.dockerconfigjson())
    except RegistryError as err:
        print(f"ERROR registry: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
