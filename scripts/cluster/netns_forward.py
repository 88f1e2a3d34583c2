"""TCP forwarding between the host's loopback and the real node's network namespace.

The real node (scripts/cluster/realnode.py) runs in a network namespace of its own; the control
plane listens on the host's 127.0.0.1 only. One process of this module, running in the host's
namespace, bridges the two without any address beyond those namespaces:

- ``--listen NODE_ADDR:PORT=HOST_PORT``: a listening socket created inside the node's
  namespace (the kubelet, kube-proxy, CoreDNS and pods reach the API server at
  ``127.0.0.1:<api port>`` there); every connection is forwarded to ``127.0.0.1:HOST_PORT`` of
  the host.
- ``--connect-proxy SOCKET``: an HTTP CONNECT proxy on a unix socket, the API server's
  ``cluster`` egress (EgressSelectorConfiguration, HTTPConnect over UDS): the API server reaches
  the kubelet (logs, exec, port-forward) and Services through it. Destinations in
  ``--node-cidr``/``--service-cidr`` are dialled inside the node's namespace; 127.0.0.1 on the host
  (the kwok nodes' address, as without an egress selector); anything else is refused.

A socket keeps the namespace it was created in: the process switches its (only) thread into the
node's namespace just long enough to create a socket there.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ipaddress
import os
import signal
import socket
import sys

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class Namespaces:
    def __init__(self, node_netns: str):
        self.host = os.open("/proc/self/ns/net", os.O_RDONLY)
        self.node = os.open(node_netns, os.O_RDONLY)

    def node_socket(self, family: int = socket.AF_INET) -> socket.socket:
        """A TCP socket of the node's network namespace."""
        _setns(self.node)
        try:
            return socket.socket(family, socket.SOCK_STREAM)
        finally:
            _setns(self.host)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass


async def _splice(r1, w1, r2, w2) -> None:
    try:
        await asyncio.gather(_pipe(r1, w2), _pipe(r2, w1))
    finally:
        for w in (w1, w2):
            w.close()


def _listener(ns: Namespaces, spec: str):
    """NODE_ADDR:PORT=HOST_PORT -> (node socket bound and listening, host port)."""
    try:
        listen, host_port = spec.split("=")
        addr, port = listen.rsplit(":", 1)
        sock = ns.node_socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((addr, int(port)))
    except ValueError as e:
        raise SystemExit(f"netns_forward: --listen {spec!r} is not NODE_ADDR:PORT=HOST_PORT ({e})") from e
    sock.listen(128)
    sock.setblocking(False)
    return sock, int(host_port)


async def serve(args: argparse.Namespace) -> None:
    ns = Namespaces(args.netns)
    node_nets = [ipaddress.ip_network(c) for c in (args.node_cidr, args.service_cidr) if c]
    servers = []

    for spec in args.listen:
        sock, host_port = _listener(ns, spec)

        async def forward(reader, writer, host_port=host_port):
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", host_port)
            except OSError:
                writer.close()
                return
            await _splice(reader, writer, up_r, up_w)

        servers.append(await asyncio.start_server(forward, sock=sock))

    if args.connect_proxy:
        async def connect(reader, writer):
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                host, port = target.rsplit(":", 1)
                ip = ipaddress.ip_address(host.strip("[]"))
                if method != "CONNECT":
                    raise ValueError(method)
            except (TimeoutError, asyncio.IncompleteReadError, ValueError, UnicodeDecodeError):
                writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                writer.close()
                return
            try:
                if any(ip in net for net in node_nets):
                    sock = ns.node_socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET)
                    sock.setblocking(False)
                    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (str(ip), int(port))), 10)
                    up_r, up_w = await asyncio.open_connection(sock=sock)
                elif ip.is_loopback:
                    up_r, up_w = await asyncio.wait_for(asyncio.open_connection(str(ip), int(port)), 10)
                else:
                    writer.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                    writer.close()
                    return
            except (TimeoutError, OSError) as e:
                writer.write(f"HTTP/1.1 502 Bad Gateway\r\n\r\n{e}".encode())
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _splice(reader, writer, up_r, up_w)

        if os.path.exists(args.connect_proxy):
            os.unlink(args.connect_proxy)
        servers.append(await asyncio.start_unix_server(connect, path=args.connect_proxy))
        os.chmod(args.connect_proxy, 0o600)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("netns_forward: serving", flush=True)
    await stop.wait()
    for s in servers:
        s.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--netns", required=True, help="the node's network namespace (/proc/<pid>/ns/net)")
    p.add_argument("--listen", action="append", default=[], help="NODE_ADDR:PORT=HOST_PORT")
    p.add_argument("--connect-proxy", help="unix socket of the HTTP CONNECT proxy")
    p.add_argument("--node-cidr")
    p.add_argument("--service-cidr")
    p.add_argument("--state-dir", help="the tier's state directory (identifies the process)")
    args = p.parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
