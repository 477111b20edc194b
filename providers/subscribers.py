"""What provisioning does when the IPAM domain reports a change.

Registered in :meth:`providers.apps.ProvidersConfig.ready`. Delivered in the
publishing transaction (DESIGN §7: a job is created in the same transaction as
the change that needs it, and handed to Celery only after commit), so a shoot
whose creation rolls back leaves no job, and a committed one always has its job.
"""

from __future__ import annotations

from allocations import events
from allocations.models import Shoot
from audit.services import Actor
from ipam_portal.events import Delivery, Envelope, subscribe

from .choices import JobAction
from .services import shoot_job

#: What a change of a shoot asks the cloud for.
SHOOT_EVENT_ACTIONS: dict[type[events.ShootEvent], str] = {
    events.ShootCreated: JobAction.PROVISION,
    events.ShootFamiliesChanged: JobAction.PROVISION,
    events.ShootDeleted: JobAction.DEPROVISION,
    events.NodeRegistered: JobAction.SYNC_ROUTES,
    events.NodeRemoved: JobAction.SYNC_ROUTES,
}


def shoot_changed(envelope: Envelope) -> None:
    """Create the job the change needs, if an account provisions the shoot's region."""
    event = envelope.event
    assert isinstance(event, events.ShootEvent)
    shoot = event.shoot if isinstance(event.shoot, Shoot) else Shoot.objects.get(pk=event.shoot_id)
    actor = Actor(envelope.actor or "system", envelope.source or "system")
    shoot_job(shoot=shoot, action=SHOOT_EVENT_ACTIONS[type(event)], actor=actor)


def register() -> None:
    """Subscribe provisioning to the shoot and node events (idempotent)."""
    subscribe(*SHOOT_EVENT_ACTIONS, name="providers.jobs", delivery=Delivery.IN_TRANSACTION)(shoot_changed)
