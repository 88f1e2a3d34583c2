"""Failure alerts: the DAG-level `on_failure_callback` of every platform DAG (`dag_defaults()`).

Configured per environment by the chart (`pipelines.alerts` -> platform.json `alerts`); the
credentials stay in Airflow connections (from Kubernetes Secrets, e.g. the official chart's
`airflow.secret` as `AIRFLOW_CONN_<ID>`), read only when a run fails:

- `webhook.connId`: `WebhookNotifier` POSTs a JSON message (`text` for Slack/Mattermost-style
  incoming webhooks plus `dag_id`, `run_id`, `reason`, `url`) to the connection's URL (`host`
  holding the full URL, or schema/host/port/path); `password`, when set, is sent as a bearer token.
- `smtp.connId` + `smtp.to`: the SMTP provider's `SmtpNotifier` mails the same facts.

Nothing is configured = no callback. The callback runs where Airflow runs DAG callbacks (the DAG
processor, Airflow 3.1), so the message never goes through a task pod.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier

SUBJECT = "[airflow-mlops] {{ dag.dag_id }} failed: {{ run_id | default('') }}"
BODY = (
    "DAG {{ dag.dag_id }} run {{ run_id | default('') }} failed"
    "{% if reason is defined and reason %} ({{ reason }}){% endif %}."
)
TIMEOUT_SECONDS = 10.0


def _field(context: Any, name: str) -> str:
    value = context.get(name)
    if value is None and name == "run_id" and context.get("dag_run") is not None:
        value = getattr(context["dag_run"], "run_id", None)
    return "" if value is None else str(value)


def webhook_url(conn: Any) -> str:
    """The URL of an http connection: `host` may hold the whole URL."""
    host = conn.host or ""
    if host.startswith(("http://", "https://")):
        return host
    schema = conn.schema or "https"
    port = f":{conn.port}" if conn.port else ""
    path = (conn.extra_dejson or {}).get("path", "")
    return f"{schema}://{host}{port}{path}"


class WebhookNotifier(BaseNotifier):
    """POST the failure as JSON to the URL of Airflow connection `conn_id`."""

    template_fields = ("conn_id",)

    def __init__(self, conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id

    def message(self, context: Any) -> dict[str, str]:
        dag = context.get("dag")
        dag_id = getattr(dag, "dag_id", "") or _field(context, "dag_id")
        run_id = _field(context, "run_id")
        reason = _field(context, "reason")
        text = f"[airflow-mlops] DAG {dag_id} run {run_id} failed" + (f" ({reason})" if reason else "")
        return {"text": text, "dag_id": dag_id, "run_id": run_id, "reason": reason, "state": "failed"}

    def notify(self, context: Any) -> None:
        import httpx
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(self.conn_id)
        headers = {"Content-Type": "application/json"}
        if conn.password:
            headers["Authorization"] = f"Bearer {conn.password}"
        response = httpx.post(
            webhook_url(conn), json=self.message(context), headers=headers, timeout=TIMEOUT_SECONDS
        )
        if response.status_code >= 300:
            # The URL may carry a token (Slack): name the connection, not the URL.
            raise RuntimeError(
                f"failure webhook (connection {self.conn_id!r}) answered HTTP {response.status_code}"
            )


def failure_notifiers(alerts: dict[str, Any] | None) -> list[Any]:
    """The notifiers of platform.json `alerts` (empty list = no alert configured)."""
    alerts = alerts or {}
    out: list[Any] = []
    webhook = (alerts.get("webhook") or {}).get("connId")
    if webhook:
        out.append(WebhookNotifier(conn_id=webhook))
    smtp = alerts.get("smtp") or {}
    if smtp.get("connId") and smtp.get("to"):
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        out.append(
            SmtpNotifier(
                to=list(smtp["to"]),
                from_email=smtp.get("from") or None,
                subject=SUBJECT,
                html_content=BODY,
                smtp_conn_id=smtp["connId"],
            )
        )
    return out
