"""Hooks for the demo landscape of ``manage.py ipam_demo``: other apps add their part.

The IPAM domain knows nothing of provisioning, yet the demo should show it: an
app adds a step with :func:`add_step_before_shoots` from its ``AppConfig.ready()``
(providers adds a dry-run account, so the demo's OpenStack shoots get jobs that
plan and record only). Steps run in the demo's transaction, after the pools and
the seed exist and before the shoots are created, in the order they were added.
"""

from __future__ import annotations

from collections.abc import Callable

from audit.services import Actor

DemoStep = Callable[[Actor], None]

_before_shoots: list[DemoStep] = []


def add_step_before_shoots(step: DemoStep) -> None:
    """Run ``step(actor)`` before the demo creates its shoots (idempotent)."""
    if step not in _before_shoots:
        _before_shoots.append(step)


def run_before_shoots(actor: Actor) -> None:
    """Run every step added with :func:`add_step_before_shoots`."""
    for step in _before_shoots:
        step(actor)
