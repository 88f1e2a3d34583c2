"""make bench-serving's method: every request counts in every percentile, a failed one at the
client's full timeout, with the error rate beside it (tests/bench/bench_serving.py run_load,
against a small local HTTP server that fails one request in ten)."""

from __future__ import annotations

import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.bench import bench_serving


class FailsOneInTen(BaseHTTPRequestHandler):
    counter = itertools.count()

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        code = 500 if next(self.counter) % 10 == 9 else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def test_failed_requests_count_at_the_timeout_in_every_percentile() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FailsOneInTen)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        r = bench_serving.run_load(server.server_address[1], [b"{}"], rate=200, duration=1, clients=2)
    finally:
        server.shutdown()
        server.server_close()
    assert (r["requests"], r["ok"], r["errors"]) == (200, 180, 20), r
    assert r["error_rate"] == 0.1
    timeout_ms = bench_serving.TIMEOUT_S * 1000
    assert r["p99_ms"] >= timeout_ms, r  # the failed tenth is the slowest tenth
    assert r["p50_ms"] < timeout_ms, r
