"""The alert sensor's durable state: an outbox of messages not yet accepted by the webhook, and
the grouping of repeated run failures. It lives in the sensor's cursor (stored with each tick in
the Dagster instance), so a message survives a webhook outage and a daemon restart.

A message leaves the outbox only when the webhook answered 2xx. A connection error, a timeout, a
429 or a 5xx keeps it for the next tick (at most ``max_attempts`` tries, then it is dropped with an
error log line); any other 4xx means the webhook will never take it, so it is dropped at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

MAX_OUTBOX = 100
GROUP_WINDOW_SECONDS = 3600.0
_RETRYABLE_4XX = {408, 425, 429}
STYLES = ("plain", "slack", "teams")

# Seconds since the epoch; a module attribute so tests can move time forward.
clock: Callable[[], float] = time.time


@dataclass
class Message:
    title: str
    lines: list[str]
    link: str
    attempts: int = 0

    def payload(self, style: str = "plain") -> dict[str, Any]:
        """The JSON body: ``plain`` (text/title/link, shown by Slack and Teams connectors alike),
        ``slack`` (mrkdwn text with a link) or ``teams`` (an Adaptive Card for a Teams workflow)."""
        if style == "slack":
            return {"text": "\n".join([f"*{self.title}*", *self.lines, f"<{self.link}|Open in Dagster>"])}
        if style == "teams":
            body = [{"type": "TextBlock", "text": self.title, "weight": "Bolder", "wrap": True}]
            body += [{"type": "TextBlock", "text": line, "wrap": True} for line in self.lines]
            card = {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": [{"type": "Action.OpenUrl", "title": "Open in Dagster", "url": self.link}],
            }
            return {"type": "message", "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ]}
        text = "\n".join([f"**{self.title}**", *self.lines, self.link])
        return {"text": text, "title": self.title, "link": self.link}


@dataclass
class AlertState:
    """Everything the sensor remembers between ticks (serialized as its cursor)."""

    runs: int | None = None  # storage id of the last run-failure event looked at
    checks: dict[str, str] = field(default_factory=dict)  # check name -> SUCCEEDED/FAILED
    freshness: dict[str, str] = field(default_factory=dict)  # asset -> PASS/WARN/FAIL
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # job:step -> since, held, link
    outbox: list[Message] = field(default_factory=list)
    dropped: int = 0

    @classmethod
    def from_cursor(cls, cursor: str | None) -> AlertState | None:
        if not cursor:
            return None
        raw = json.loads(cursor)
        outbox = [Message(**m) for m in raw.pop("outbox", [])]
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known, outbox=outbox)

    def to_cursor(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def enqueue(self, message: Message, log: Any) -> None:
        self.outbox.append(message)
        while len(self.outbox) > MAX_OUTBOX:
            lost = self.outbox.pop(0)
            self.dropped += 1
            log.error("Alert outbox full (%d): dropped the oldest alert %r", MAX_OUTBOX, lost.title)

    # -- grouping of repeated run failures ---------------------------------------------------------
    def group_failure(self, key: str, message: Message, now: float) -> bool:
        """True when ``message`` should be sent now; False when a message for ``key`` went out
        less than an hour ago (the failure is counted into the group's summary instead)."""
        group = self.groups.get(key)
        if group is not None and now - group["since"] < GROUP_WINDOW_SECONDS:
            group["held"] += 1
            group["link"] = message.link
            return False
        self.groups[key] = {"since": now, "held": 0, "link": message.link, "title": message.title}
        return True

    def due_summaries(self, now: float) -> list[Message]:
        """One summary per group whose hour is over and that held failures; the group then starts
        a new hour (so a job failing every run sends at most one message an hour)."""
        summaries: list[Message] = []
        for key, group in sorted(self.groups.items()):
            if now - group["since"] < GROUP_WINDOW_SECONDS:
                continue
            if group["held"]:
                since = datetime.fromtimestamp(group["since"], UTC).strftime("%Y-%m-%d %H:%M UTC")
                job, _, step = key.partition(":")
                what = f"`{job}` step `{step}`" if step else f"`{job}`"
                summaries.append(Message(
                    f"{group['title']}: {group['held']} more",
                    [f"{what} failed {group['held']} more time(s) since {since}; the latest run is linked."],
                    group["link"],
                ))
                self.groups[key] = {**group, "since": now, "held": 0}
            else:
                del self.groups[key]
        return summaries

    # -- delivery ----------------------------------------------------------------------------------
    def deliver(
        self, url: str, log: Any, max_attempts: int, style: str = "plain", post: Callable[[str, dict], Any] | None = None
    ) -> int:
        """Send the outbox in order; stop at the first failure that may pass (webhook down).
        Returns how many messages the webhook accepted."""
        send = post or _post
        sent = 0
        while self.outbox:
            message = self.outbox[0]
            message.attempts += 1
            try:
                send(url, message.payload(style))
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if 400 <= status < 500 and status not in _RETRYABLE_4XX:
                    self._drop(log, f"the webhook refused it (HTTP {status})")
                    continue
                self._failed(log, f"HTTP {status}", max_attempts)
                break
            except requests.RequestException as exc:
                self._failed(log, type(exc).__name__, max_attempts)
                break
            self.outbox.pop(0)
            sent += 1
        return sent

    def _failed(self, log: Any, reason: str, max_attempts: int) -> None:
        message = self.outbox[0]
        if message.attempts >= max_attempts:
            self._drop(log, f"{message.attempts} attempts failed, the last with {reason}")
            return
        log.warning(
            "Alert webhook failed (%s), attempt %d of %d for %r; retried on the next tick (%d waiting).",
            reason, message.attempts, max_attempts, message.title, len(self.outbox),
        )

    def _drop(self, log: Any, why: str) -> None:
        message = self.outbox.pop(0)
        self.dropped += 1
        log.error("Alert dropped: %r was not delivered: %s.", message.title, why)


def _post(url: str, payload: dict) -> None:
    response = requests.post(url, json=payload, timeout=(5, 15))
    response.raise_for_status()
