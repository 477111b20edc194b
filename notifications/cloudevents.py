"""Domain events as CloudEvents 1.0 in structured mode (JSON), and what a subscription matches.

Pure apart from the settings read by :func:`event_source`. The spec attributes are
``specversion``, ``id`` (the domain event's envelope id: the same for every
subscription and every retry), ``source``, ``type`` (``ipam.`` and the domain
type), ``subject`` (``shoot/12``), ``time`` (when it happened, RFC 3339),
``datacontenttype`` and ``data`` (the event's payload).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .choices import CLOUDEVENT_TYPE_PREFIX

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
SPEC_VERSION = "1.0"


def event_source() -> str:
    """The CloudEvents ``source`` of every event (``NOTIFICATIONS_EVENT_SOURCE``)."""
    return str(getattr(settings, "NOTIFICATIONS_EVENT_SOURCE", "") or "/ipam-portal")


def cloudevent(
    *, event_id: uuid.UUID, event_type: str, subject: str, time: dt.datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """The structured-mode CloudEvent of one domain event (a JSON object)."""
    return {
        "specversion": SPEC_VERSION,
        "id": str(event_id),
        "source": event_source(),
        "type": CLOUDEVENT_TYPE_PREFIX + event_type,
        "subject": subject,
        "time": time.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": data,
    }


def encode(event: dict[str, Any]) -> str:
    """The body sent (compact JSON, keys in a stable order)."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True, default=str)


@dataclass(frozen=True)
class Facets:
    """What a subscription's filters look at; None: the event does not carry it."""

    project: str | None = None
    pool_id: int | None = None
    provider: str | None = None


def matches(facets: Facets, *, projects: list[str], providers: list[str], pool_ids: set[int]) -> bool:
    """Whether an event with ``facets`` passes the filters (empty filter: any; else it must carry a listed value)."""
    if projects and facets.project not in projects:
        return False
    if providers and facets.provider not in providers:
        return False
    return not pool_ids or facets.pool_id in pool_ids
