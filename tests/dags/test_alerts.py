"""Failure alerts: chart value pipelines.alerts -> platform.json `alerts` -> every DAG's
`on_failure_callback` (mlops_platform.alerts). The webhook is received by an HTTP server and the
mail by an SMTP server, both real sockets on 127.0.0.1; credentials come from Airflow connections
(AIRFLOW_CONN_* env vars, as the chart's airflow.secret entries set them)."""

from __future__ import annotations

import json
import socketserver
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pendulum
import pytest

from tests.support import paths
from tests.support.helm import render_chart
from tests.support.processes import serving_in_thread

SECRET_TOKEN = "s3cr3t-webhook-token"


def _dag(dag_id: str = "alerted") -> Any:
    from airflow.sdk import DAG

    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))


def _context(dag: Any) -> dict[str, Any]:
    """What the DAG processor passes to a DAG-level failure callback."""
    return {"dag": dag, "run_id": "scheduled__2026-03-04T02:00:00+00:00", "reason": "task_failure"}


@pytest.fixture()
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serving_in_thread(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as port:
        yield f"http://127.0.0.1:{port}/hooks/mlops", received


class _SMTPHandler(socketserver.StreamRequestHandler):
    """A small but real SMTP server (RFC 5321 commands smtplib sends without TLS/auth)."""

    def _reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        self._reply("220 127.0.0.1 test SMTP")
        mail: dict[str, Any] = {"rcpt": []}
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-127.0.0.1\r\n250 8BITMIME\r\n")
            elif verb == "HELO" or verb in ("RSET", "NOOP"):
                self._reply("250 OK")
            elif verb == "MAIL":
                mail = {"from": line[10:].strip("<> "), "rcpt": []}
                self._reply("250 OK")
            elif verb == "RCPT":
                mail["rcpt"].append(line[8:].strip("<> "))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (data := self.rfile.readline().decode()) not in (".\r\n", ""):
                    lines.append(data)
                mail["data"] = "".join(lines)
                self.server.messages.append(mail)  # type: ignore[attr-defined]
                self._reply("250 OK queued")
            elif verb == "QUIT":
                self._reply("221 Bye")
                return
            else:
                self._reply("502 not implemented")


@pytest.fixture()
def smtp_server() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.messages = []  # type: ignore[attr-defined]
    with serving_in_thread(server) as port:
        yield port, server.messages  # type: ignore[attr-defined]


def test_no_alert_configured_means_no_callback(platform_envs, dagbags) -> None:
    for name, env in platform_envs.items():
        assert env.platform["alerts"] == {
            "webhook": {"connId": None},
            "smtp": {"connId": None, "to": [], "from": None},
        }
        assert all(not dag.has_on_failure_callback for dag in dagbags[name].dags.values()), name


def test_the_chart_renders_the_alerts() -> None:
    objects = render_chart(
        values={
            "pipelines": {
                "alerts": {
                    "webhook": {"connId": "mlops_alerts_webhook"},
                    "smtp": {
                        "connId": "mlops_alerts_smtp",
                        "to": ["ml-team@example.com"],
                        "from": "airflow@example.com",
                    },
                }
            }
        },
        show_only=["templates/platform/platform-configmap.yaml"],
    )
    (cm,) = objects
    assert json.loads(cm["data"]["platform.json"])["alerts"] == {
        "webhook": {"connId": "mlops_alerts_webhook"},
        "smtp": {"connId": "mlops_alerts_smtp", "to": ["ml-team@example.com"], "from": "airflow@example.com"},
    }


def test_the_chart_refuses_a_bad_recipient() -> None:
    with pytest.raises(Exception, match="to"):
        render_chart(
            values={"pipelines": {"alerts": {"smtp": {"connId": "x", "to": ["not an address"]}}}},
            show_only=["templates/platform/platform-configmap.yaml"],
        )


def test_every_dag_gets_the_configured_callbacks(platform_envs, tmp_path) -> None:
    from tests.support.platform_env import load_dagbag

    env = platform_envs["kind"].with_platform(
        tmp_path,
        alerts={
            "webhook": {"connId": "mlops_alerts_webhook"},
            "smtp": {"connId": "smtp_x", "to": ["a@example.com"]},
        },
    )
    bag = load_dagbag(paths.DAGS_DIR, env)
    assert bag.import_errors == {}
    for dag in bag.dags.values():
        kinds = sorted(type(cb).__name__ for cb in dag.on_failure_callback)
        assert kinds == ["SmtpNotifier", "WebhookNotifier"], dag.dag_id


def test_webhook_receives_the_failure(webhook, monkeypatch) -> None:
    from mlops_platform.alerts import failure_notifiers

    url, received = webhook
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_ALERTS_WEBHOOK",
        json.dumps({"conn_type": "http", "host": url, "password": SECRET_TOKEN}),
    )
    (notifier,) = failure_notifiers(
        {"webhook": {"connId": "mlops_alerts_webhook"}, "smtp": {"connId": None, "to": []}}
    )
    notifier(_context(_dag()))
    (got,) = received
    assert got["path"] == "/hooks/mlops"
    assert got["headers"]["Authorization"] == f"Bearer {SECRET_TOKEN}"
    assert got["json"]["dag_id"] == "alerted"
    assert got["json"]["run_id"] == "scheduled__2026-03-04T02:00:00+00:00"
    assert "alerted" in got["json"]["text"] and "failed" in got["json"]["text"]
    assert SECRET_TOKEN not in json.dumps(got["json"])


def test_webhook_error_names_the_connection_not_the_url(monkeypatch) -> None:
    """A URL may carry a token (Slack): the error names the connection only."""
    from mlops_platform.alerts import failure_notifiers

    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_ALERTS_WEBHOOK",
        json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9/x?token=t0k"}),
    )
    (notifier,) = failure_notifiers({"webhook": {"connId": "mlops_alerts_webhook"}})
    with pytest.raises(Exception) as info:
        notifier(_context(_dag()))
    assert "t0k" not in str(info.value)


def test_smtp_server_receives_the_failure_mail(smtp_server, monkeypatch) -> None:
    from mlops_platform.alerts import failure_notifiers

    port, messages = smtp_server
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_ALERTS_SMTP",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": port,
                "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10, "retry_limit": 1},
            }
        ),
    )
    (notifier,) = failure_notifiers(
        {
            "webhook": {"connId": None},
            "smtp": {
                "connId": "mlops_alerts_smtp",
                "to": ["ml-team@example.com"],
                "from": "airflow@example.com",
            },
        }
    )
    notifier(_context(_dag("ml_inference")))
    (mail,) = messages
    assert mail["from"] == "airflow@example.com"
    assert mail["rcpt"] == ["ml-team@example.com"]
    assert (
        "Subject: [airflow-mlops] ml_inference failed: scheduled__2026-03-04T02:00:00+00:00" in mail["data"]
    )
    import email

    message = email.message_from_string(mail["data"])
    bodies = [part.get_payload(decode=True).decode() for part in message.walk() if not part.is_multipart()]
    assert any(
        "DAG ml_inference run scheduled__2026-03-04T02:00:00+00:00 failed (task_failure)" in b for b in bodies
    )
