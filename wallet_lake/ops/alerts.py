"""Alerts that reach people: `send_alert(title, fields)` posts a Slack-compatible JSON message to
the webhook in WL_ALERT_WEBHOOK_URL (Slack incoming webhook, or anything that accepts the same
JSON) and always writes the alert to the log (logger `wallet_lake.alerts`, level ERROR).

With WL_ALERT_WEBHOOK_URL empty the alert is only logged. Every title and value is passed
through the secret redactor first, so an error message that quotes a password cannot leak it.
A webhook that keeps refusing raises AlertDeliveryError after the alert was logged (a sensor
tick then fails visibly in the Dagster UI instead of dropping the alert silently)."""

from __future__ import annotations

import logging
import time
from typing import Mapping

from wallet_lake.security.secrets import redact

log = logging.getLogger("wallet_lake.alerts")

WEBHOOK_ENV = "WL_ALERT_WEBHOOK_URL"
_ATTEMPTS = 3
# Slack limits a section's text to 3000 characters; keep values well under it.
_MAX_VALUE = 2800


class AlertDeliveryError(RuntimeError):
    pass


def _clip(text: str, limit: int = _MAX_VALUE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alert_payload(title: str, fields: Mapping[str, object]) -> dict:
    """Slack message: a plain-text fallback plus blocks (header, one section per field)."""
    clean = {str(k): _clip(redact(str(v))) for k, v in fields.items()}
    title = _clip(redact(title), 150)
    fallback = "\n".join([title, *(f"{k}: {v}" for k, v in clean.items())])
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": title}}]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{k}*\n{v}"}} for k, v in clean.items()]
    return {"text": _clip(fallback, 3000), "blocks": blocks[:50]}


def _webhook_url() -> str:
    """The webhook URL (a secret for Slack: from Secrets Manager via WL_ALERT_WEBHOOK_URL_SECRET_ID,
    or the environment); empty when none is configured."""
    from wallet_lake.security.secrets import resolve_secret, secret_configured

    if not secret_configured(WEBHOOK_ENV):
        return ""
    return resolve_secret(WEBHOOK_ENV, refresh=True).strip()


def send_alert(title: str, fields: Mapping[str, object]) -> None:
    """Log the alert and, when WL_ALERT_WEBHOOK_URL is set, post it there."""
    import httpx

    payload = alert_payload(title, fields)
    log.error(payload["blocks"][0]["text"]["text"], extra={"alert": {k: _clip(redact(str(v))) for k, v in fields.items()}})
    url = _webhook_url()
    if not url:
        return
    last = ""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            resp = httpx.post(url, json=payload, timeout=10.0)
            if resp.status_code < 400:
                return
            last = f"HTTP {resp.status_code} {resp.text[:200]}"
            if resp.status_code < 500 and resp.status_code != 429:
                break  # the webhook rejects this message; retrying will not help
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if attempt < _ATTEMPTS:
            time.sleep(2 ** (attempt - 1))
    # The URL itself is a secret for Slack webhooks: name the variable, not the value.
    raise AlertDeliveryError(redact(f"alert {payload['blocks'][0]['text']['text']!r} could not be delivered to the webhook in {WEBHOOK_ENV}: {last}"))
