"""Fixtures of the outbound event tests: a loopback receiver and subscriptions made by the service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from audit.services import Actor
from notifications import services
from notifications.models import EventSubscription
from tests.support.receiver import Receiver

SECRET = "s3cret-for-the-tests-only"
SETUP = Actor("events-setup", "command")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def subscription(receiver: Receiver) -> Callable[..., EventSubscription]:
    """``subscription(["shoot.created"], **filters)``: a subscription to the receiver."""
    made = 0

    def make(event_types: list[str], **kwargs: Any) -> EventSubscription:
        nonlocal made
        made += 1
        return services.subscription_create(
            name=kwargs.pop("name", f"hook-{made}"),
            target_url=kwargs.pop("target_url", receiver.url),
            event_types=event_types,
            secret=kwargs.pop("secret", SECRET),
            actor=SETUP,
            **kwargs,
        )

    return make


@pytest.fixture
def fast_retries(settings: Any) -> Any:
    """Retries due at once (the sweep is what runs them in the embedded mode)."""
    settings.NOTIFICATIONS_BACKOFF_SECONDS = 0
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    return settings
