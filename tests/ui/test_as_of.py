"""The "as of" control of the pool, allocation and shoot pages (``?as_of=T``).

Each page is asked before the object existed, while it held its prefixes and after
its release; a refused instant is a 400 with the error on ``as_of``; the past has
no form that writes, for an admin as for an auditor.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from allocations import history, services
from allocations.models import Allocation, Pool, Shoot
from audit.services import Actor

pytestmark = pytest.mark.django_db
SETUP = Actor("setup", "command")
BEFORE = "2000-01-01"


def get(client: Client, name: str, pk: int, at: dt.datetime | str) -> Any:
    text = at if isinstance(at, str) else history.format_instant(at)
    return client.get(reverse(name, args=[pk]), {"as_of": text})


def posts(response: Any) -> int:
    """POST forms on the page, the top bar's log-out button aside."""
    body = response.content.decode()
    return body.count('method="post"') - body.count(f'method="post" action="{reverse("logout")}"')


def banner(at: dt.datetime) -> str:
    return f'As of <time datetime="{history.format_instant(at)}">'


@pytest.fixture
def timeline(root_pool: Pool) -> dict[str, Any]:
    """A /48 allocated at ``during``, released into quarantine at ``quarantined``, freed at ``after``."""
    allocation = services.pool_allocate(pool=root_pool, actor=SETUP, cidr="2001:db8:ab::/48")
    during = timezone.now()
    services.allocation_release(allocation=allocation, actor=SETUP)
    quarantined = timezone.now()
    services.quarantine_purge(actor=SETUP, allocations=[Allocation.objects.get(pk=allocation.pk)])
    after = timezone.now()
    return {"allocation": allocation, "during": during, "quarantined": quarantined, "after": after}


def test_pool_as_of_before_during_and_after(
    ui: dict[str, Client], root_pool: Pool, timeline: dict[str, Any]
) -> None:
    client = ui["admin"]
    before = get(client, "ui:pool-detail", root_pool.pk, BEFORE)
    assert before.status_code == 200 and before.context["then"].existed is False
    assert b'id="not-existed"' in before.content and b"2001:db8:ab::/48" not in before.content
    during = get(client, "ui:pool-detail", root_pool.pk, timeline["during"])
    assert during.status_code == 200 and during.context["then"].existed
    assert banner(timeline["during"]) in during.content.decode()
    rows = {a.cidr: state for a, state in during.context["then"].rows}
    assert rows["2001:db8:ab::/48"] == "active"
    quarantined = get(client, "ui:pool-detail", root_pool.pk, timeline["quarantined"])
    assert {a.cidr: s for a, s in quarantined.context["then"].rows}["2001:db8:ab::/48"] == "quarantined"
    after = get(client, "ui:pool-detail", root_pool.pk, timeline["after"])
    assert "2001:db8:ab::/48" not in {a.cidr for a, _ in after.context["then"].rows}
    assert during.context["then"].allocated - after.context["then"].allocated == 1 << 80
    # the past has no map, no allocate form, no edit: nothing that writes
    for response in (before, during, after):
        assert posts(response) == 0 and b'id="map"' not in response.content
        assert reverse("ui:pool-edit", args=[root_pool.pk]).encode() not in response.content
    now = client.get(reverse("ui:pool-detail", args=[root_pool.pk]))
    assert posts(now) >= 1 and b'name="as_of"' in now.content and b"As of <time" not in now.content


def test_allocation_as_of_states_and_intervals(ui: dict[str, Client], timeline: dict[str, Any]) -> None:
    allocation, client = timeline["allocation"], ui["admin"]
    states = {
        key: get(client, "ui:allocation-detail", allocation.pk, at).context["then"].state
        for key, at in [("before", BEFORE)] + [(k, timeline[k]) for k in ("during", "quarantined", "after")]
    }
    assert states == {
        "before": "not yet allocated",
        "during": "active",
        "quarantined": "quarantined",
        "after": "freed",
    }
    during = get(client, "ui:allocation-detail", allocation.pk, timeline["during"])
    stages = during.context["stages"]
    assert [s.state for s in stages] == ["active", "quarantined"]
    assert during.context["then"].stage == stages[0] and "(then)" in during.content.decode()
    assert any(p.name == "gua-2001-db8" for p in during.context["pools"])
    assert posts(during) == 0


def test_allocation_page_lists_its_intervals_now(ui: dict[str, Client], root_pool: Pool) -> None:
    allocation = services.pool_allocate(pool=root_pool, actor=SETUP, prefix_length=48)
    response = ui["admin"].get(reverse("ui:allocation-detail", args=[allocation.pk]))
    assert [s.state for s in response.context["stages"]] == ["active"]
    assert b'id="stages"' in response.content and b"still" in response.content
    assert posts(response) == 1  # the label form, now


def test_shoot_as_of_before_during_and_after(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    client = ui["admin"]
    during_at = timezone.now()
    held = set(demo_shoot.allocations.filter(state="active").values_list("cidr", flat=True))
    services.shoot_release(shoot=demo_shoot, actor=SETUP)
    after_at = timezone.now()
    before = get(client, "ui:shoot-detail", demo_shoot.pk, BEFORE)
    assert before.context["then"].existed is False and before.context["then"].allocations == []
    assert b"No ranges held then." in before.content
    during = get(client, "ui:shoot-detail", demo_shoot.pk, during_at)
    assert during.context["then"].existed
    assert {a.cidr for a, _ in during.context["then"].allocations} == held
    assert {s for _, s in during.context["then"].allocations} == {"active"}
    after = get(client, "ui:shoot-detail", demo_shoot.pk, after_at)
    assert after.context["then"].existed is False
    # what stays held after the release is the quarantined IPv6 block (and its ranges)
    states_after = {a.cidr: s for a, s in after.context["then"].allocations}
    assert set(states_after.values()) <= {"quarantined"}
    assert set(states_after) == set(
        demo_shoot.allocations.filter(state="quarantined").values_list("cidr", flat=True)
    )
    for response in (before, during, after):
        assert response.status_code == 200 and posts(response) == 0
        assert b'id="nodes"' not in response.content and b'id="gardener"' not in response.content


@pytest.mark.parametrize("name", ["ui:pool-detail", "ui:allocation-detail", "ui:shoot-detail"])
def test_bad_as_of_is_a_400_on_its_field(ui: dict[str, Client], demo_shoot: Shoot, name: str) -> None:
    pk = {
        "ui:pool-detail": Pool.objects.get(name="gua-2001-db8").pk,
        "ui:allocation-detail": demo_shoot.allocations.first().pk,
        "ui:shoot-detail": demo_shoot.pk,
    }[name]
    response = get(ui["auditor"], name, pk, "last tuesday")
    assert response.status_code == 400
    form = response.context["as_of_form"]
    assert "is not an ISO 8601 instant" in form.errors["as_of"][0]
    body = response.content.decode()
    assert 'id="id_as_of_errors"' in body and 'value="last tuesday"' in body
    assert "As of <time" not in body


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_past_pages_have_no_write_forms(ui: dict[str, Client], demo_shoot: Shoot, role: str) -> None:
    pool = Pool.objects.get(name="gua-2001-db8")
    at = timezone.now()
    for name, pk in [
        ("ui:pool-detail", pool.pk),
        ("ui:allocation-detail", demo_shoot.allocations.first().pk),
        ("ui:shoot-detail", demo_shoot.pk),
    ]:
        response = get(ui[role], name, pk, at)
        body = response.content.decode()
        assert response.status_code == 200 and banner(at) in body
        assert posts(response) == 0 and 'method="get"' in body
        assert f'<a href="{reverse(name, args=[pk])}">back to now</a>' in body
        assert "/release/" not in body and "/edit/" not in body  # links to write pages neither


def test_allocation_parents_then(demo_shoot: Shoot) -> None:
    block = Allocation.objects.get(shoot=demo_shoot, role="block", family=6, state="active")
    pods = demo_shoot.allocations.filter(family=6, state="active").exclude(pk=block.pk).first()
    at = timezone.now()
    then = history.allocation_at(pods, at)
    assert then.state == "active" and block in then.parents and pods not in then.parents
    assert history.allocation_at(pods, at - dt.timedelta(days=1)).parents == []


def test_format_instant_is_utc_with_z() -> None:
    at = dt.datetime(2026, 3, 1, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert history.format_instant(at) == "2026-03-01T12:00:00Z"
    assert history.parse_instant(history.format_instant(at)) == at
