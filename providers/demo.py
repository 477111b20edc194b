"""Provisioning's part of ``manage.py ipam_demo``: a dry-run provider account.

Added before the demo creates its shoots, so the OpenStack shoots get
provisioning jobs that plan and record only (no cloud is touched).
"""

from __future__ import annotations

from allocations import demo
from audit.services import Actor

from .services import account_create


def dry_run_account(actor: Actor) -> None:
    """Create the demo's dry-run account for OpenStack eu-de-1."""
    account_create(
        name="dry-run-eu-de-1",
        type="dry-run",
        provider="openstack",
        region="eu-de-1",
        options={"note": "demo: plans what OpenStack would get, touches no cloud"},
        actor=actor,
    )


def install() -> None:
    """Add the dry-run account to the demo (idempotent)."""
    demo.add_step_before_shoots(dry_run_account)
