"""Provisioning's events: a job ended (see :mod:`ipam_portal.events`).

Published by :func:`providers.services.jobs._transition`, the one place job states
change, inside the transaction that ends the job: a rollback publishes nothing.
Integrations (outbound events) subscribe; provisioning imports none of them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from ipam_portal.events import DomainEvent, event_type

if TYPE_CHECKING:
    from .models import ProvisioningJob

#: The longest ``last_error`` an event carries (the job row keeps the whole text).
ERROR_CHARS = 500


@dataclasses.dataclass(frozen=True)
class JobEvent(DomainEvent):
    """A provisioning job changed state (subject ``job/<id>``)."""

    job_id: int
    action: str
    state: str
    shoot_id: int | None
    shoot: str
    project: str
    provider: str
    account: str
    attempts: int
    last_error: str = ""

    @property
    def subject(self) -> str:
        return f"job/{self.job_id}"

    @classmethod
    def of(cls, job: ProvisioningJob) -> JobEvent:
        return cls(
            job_id=job.pk,
            action=job.action,
            state=job.state,
            shoot_id=job.shoot_id,
            shoot=str(job.shoot) if job.shoot_id else "",
            project=job.project,
            provider=job.account.provider,
            account=job.account.name,
            attempts=job.attempts,
            last_error=(job.last_error or "")[:ERROR_CHARS],
        )


@event_type
@dataclasses.dataclass(frozen=True)
class JobSucceeded(JobEvent):
    """A job did everything it had to do."""

    type: ClassVar[str] = "job.succeeded"


@event_type
@dataclasses.dataclass(frozen=True)
class JobFailed(JobEvent):
    """A job gave up (a permanent error, or its attempts ran out); ``last_error`` says why."""

    type: ClassVar[str] = "job.failed"


#: The event a job publishes when it enters a state (states not listed publish nothing).
JOB_STATE_EVENTS: dict[str, type[JobEvent]] = {"succeeded": JobSucceeded, "failed": JobFailed}
