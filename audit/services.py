"""Writing audit events. Every service write calls :func:`audit_record` in its transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

from .models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who asks for a change and through which door (passed into every service)."""

    name: str
    source: str = AuditEvent.Source.SYSTEM

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an actor needs a name")
        if self.source not in AuditEvent.Source.values:
            raise ValueError(f"unknown audit source {self.source!r}")


SYSTEM = Actor("system", AuditEvent.Source.SYSTEM)


def audit_record(
    *,
    actor: Actor,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    project: str = "",
    message: str = "",
) -> AuditEvent:
    """Append one audit event for ``obj``; call inside the transaction of the change."""
    return AuditEvent.objects.create(
        actor=actor.name[:150],
        source=actor.source,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:255],
        project=project,
        before=before,
        after=after,
        message=message,
    )
