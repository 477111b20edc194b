"""Who asks for a change, and through which door: the value every service receives.

It lives in the kernel because every front end makes one (the UI, the API, the
admin, commands, workers) before calling a service, and the audit trail records
it. :class:`Source` is the closed list of doors.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class Source(models.TextChoices):
    """The door a change came through (stored on every audit event)."""

    UI = "ui", "Web UI"
    API = "api", "REST API"
    ADMIN = "admin", "Django admin"
    COMMAND = "command", "Management command"
    WORKER = "worker", "Worker"
    SYSTEM = "system", "System"
    ADMISSION = "admission", "Admission webhook"
    CONTROLLER = "controller", "Kubernetes controller"


@dataclass(frozen=True)
class Actor:
    """Who asks for a change and through which door (passed into every service)."""

    name: str
    source: str = Source.SYSTEM

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an actor needs a name")
        if self.source not in Source.values:
            raise ValueError(f"unknown audit source {self.source!r}")


SYSTEM = Actor("system", Source.SYSTEM)
