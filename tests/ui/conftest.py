"""UI fixtures: the demo landscape, one logged-in Django test client per role.

Roles (as in the API tests): ``admin`` (superuser), ``auditor`` (reads only),
``op-in`` (operator, member of ``garden-demo``, the demo shoots' project),
``op-out`` (operator of project ``other``), ``norole`` (logged in, no role) and
``anonymous``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from allocations.models import Pool, Shoot
from tests.support.factories import DEMO_PROJECT, demo_landscape, role_users

__all__ = ["DEMO_PROJECT"]


def make_users() -> dict[str, Any]:
    """The role users of the API tests plus a user without any role."""
    users = role_users()
    users.pop("readonly")
    users["norole"] = get_user_model().objects.create_user("norole", "", "pw-for-tests")
    return users


@pytest.fixture
def users(db: None) -> dict[str, Any]:
    return make_users()


@pytest.fixture
def demo(db: None) -> None:
    demo_landscape()


@pytest.fixture
def ui(users: dict[str, Any], demo: None) -> dict[str, Client]:
    """Role name -> a Django test client logged in as that role (``anonymous``: not logged in)."""
    clients: dict[str, Client] = {}
    for role, user in users.items():
        client = Client()
        client.force_login(user)
        clients[role] = client
    clients["anonymous"] = Client()
    return clients


@pytest.fixture
def root_pool(demo: None) -> Pool:
    return Pool.objects.get(name="gua-2001-db8")


@pytest.fixture
def demo_shoot(demo: None) -> Shoot:
    return Shoot.objects.get(project=DEMO_PROJECT, name="openstack-ds")
