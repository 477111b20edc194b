"""The next-free preview asks the allocator's own rule for the length it previews."""

from __future__ import annotations

import pytest

from allocations import services
from audit.services import Actor
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_preview_and_allocation_share_the_default_length_rule(api_admin) -> None:
    actor = Actor("alice", "command")
    with_default = services.pool_create(name="d", cidr="2001:db8::/48", default_prefix_length=56, actor=actor)
    without = services.pool_create(name="n", cidr="2001:db9::/48", actor=actor)
    preview = api_admin.get(f"/api/v1/pools/{with_default.pk}/next/").json()
    assert preview == {"cidr": "2001:db8::/56", "prefix_length": 56}
    refused_preview = assert_error(
        api_admin.get(f"/api/v1/pools/{without.pk}/next/"), 400, field="prefix_length"
    )
    refused_allocation = assert_error(
        api_admin.post(f"/api/v1/pools/{without.pk}/allocations/", {}, format="json"),
        400,
        field="prefix_length",
    )
    assert refused_preview["detail"] == refused_allocation["detail"]
    assert refused_preview["code"] == refused_allocation["code"]
    # /0 is a length like any other, not "use the default": refused as the allocation refuses it
    zero = api_admin.get(f"/api/v1/pools/{with_default.pk}/next/?prefix_length=0")
    assert_error(zero, 400, field="prefix_length", code="prefix_length_not_allowed")
