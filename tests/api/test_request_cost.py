"""What one API write costs: SQL statements per request, output serializers built once.

The hot writes (a shoot, a next-free allocation) are timed by ``bench/api.py``; these
tests pin what makes them cheap, on SQLite and on PostgreSQL: every statement a
request sends is named here, and the prebuilt output serializers answer exactly what
DRF's own ``ModelSerializer`` would.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers as drf
from rest_framework.test import APIClient

from accounts import roles
from accounts import services as account_services
from allocations import services
from allocations.api import serializers as s
from allocations.models import Allocation, Node, Pool, Seed, Shoot
from audit.models import AuditEvent
from ipam_portal.events.models import OutboxMessage
from tests.api.conftest import assert_error, nothing_written
from tests.support.factories import SETUP
from tests.support.sql import appends_audit

pytestmark = pytest.mark.django_db

SHOOT = {
    "project": "garden-demo",
    "name": "cost-shoot",
    "seed": "seed-eu-de-1",
    "provider": "openstack",
    "region": "eu-de-1",
    "ip_families": ["IPv4", "IPv6"],
}
# Transaction control differs by database and test mode (BEGIN/COMMIT, savepoints): not counted.
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def statements(send: Any) -> tuple[Any, list[str]]:
    """The response of ``send()`` and the SQL it sent, without transaction control."""
    with CaptureQueriesContext(connection) as ctx:
        response = send()
    sql = [q["sql"] for q in ctx.captured_queries]
    return response, [q for q in sql if not q.lstrip().upper().startswith(_CONTROL)]


def tables(sql: list[str], verb: str) -> list[str]:
    """The table of each ``verb`` statement (``SELECT``: its FROM table), in order."""
    found = []
    for q in sql:
        if appends_audit(q):  # on PostgreSQL a SELECT of audit_append(), which INSERTs
            q = 'INSERT INTO "audit_auditevent"'
        if not q.lstrip().upper().startswith(verb):
            continue
        marker = {"SELECT": " FROM ", "INSERT": "INSERT INTO ", "UPDATE": "UPDATE ", "DELETE": " FROM "}[verb]
        found.append(q.split(marker, 1)[1].split()[0].strip('"'))
    return found


@pytest.fixture
def c(landscape_clients: dict[str, APIClient]) -> dict[str, APIClient]:
    for role in ("admin", "op-in", "op-out"):
        # stamps last_used_at: that UPDATE comes at most once a minute, not in the counts below
        landscape_clients[role].get("/api/v1/seeds/")
    return landscape_clients


def test_shoot_creation_sends_one_statement_per_step(c: dict[str, APIClient]) -> None:
    outbox_before = OutboxMessage.objects.order_by("pk").values_list("pk", flat=True).last() or 0
    response, sql = statements(lambda: c["admin"].post("/api/v1/shoots/", SHOOT, format="json"))
    assert response.status_code == 201, response.content
    # the token (with its user), the seed; no look-up of the shoot before its INSERT. The rest is
    # the service's: pools, the claim of the block, one INSERT per stage, the provisioning job
    # (the demo has an account), the audit events in one INSERT.
    assert tables(sql, "SELECT")[:2] == ["accounts_apitoken", "allocations_seed"]
    assert "allocations_shoot" not in tables(sql, "SELECT")
    assert tables(sql, "INSERT")[0] == "allocations_shoot"
    assert tables(sql, "INSERT").count("audit_auditevent") == 1, tables(sql, "INSERT")  # batched
    assert not tables(sql, "UPDATE")
    # 15: one look-up of an earlier, deleted shoot of the same name in a sticky pool (docs/history.md);
    # +1: the outbox rows of the durable subscriber (outbound events) for every event the shoot
    # publishes (its ranges, the shoot), batched by the unit of work into one INSERT at its end
    # (issue 18; was one INSERT per publish: three, 18 statements in all);
    # +1: whether the block pool's readable name (``project/name``, else with the block's CIDR) is
    # taken by an earlier shoot's block pool, one look-up on the unique name (issue 16: no ids in names).
    assert tables(sql, "INSERT").count("events_outboxmessage") == 1, tables(sql, "INSERT")  # batched
    assert tables(sql, "SELECT").count("allocations_pool") == 2, tables(sql, "SELECT")  # pools, the name
    assert len(sql) <= 17, "\n".join(sql)
    published = list(OutboxMessage.objects.filter(pk__gt=outbox_before).values_list("event_type", flat=True))
    ranges = Allocation.objects.filter(shoot_id=response.json()["id"]).count()
    assert published == ["allocation.allocated"] * ranges + ["shoot.created"]  # one row per event, in order


def test_shoot_asked_again_is_answered_from_the_unique_name(c: dict[str, APIClient]) -> None:
    first = c["admin"].post("/api/v1/shoots/", SHOOT, format="json")
    assert first.status_code == 201, first.content
    events = AuditEvent.objects.count()
    with nothing_written():
        again = c["admin"].post("/api/v1/shoots/", SHOOT, format="json")
        other = c["admin"].post("/api/v1/shoots/", {**SHOOT, "ip_families": ["IPv4"]}, format="json")
    assert again.status_code == 200 and again.json() == first.json()
    assert_error(other, 409, field="ip_families", code="already_exists")
    assert AuditEvent.objects.count() == events
    released = c["admin"].delete(f"/api/v1/shoots/{first.json()['id']}/")
    assert released.status_code == 204
    anew = c["admin"].post("/api/v1/shoots/", SHOOT, format="json")  # the name is free again
    assert anew.status_code == 201 and anew.json()["id"] != first.json()["id"]


def test_bulk_still_answers_a_live_shoot_by_name(c: dict[str, APIClient]) -> None:
    first = c["admin"].post("/api/v1/shoots/", SHOOT, format="json").json()
    bulk = c["admin"].post("/api/v1/shoots/bulk/", {"shoots": [SHOOT, SHOOT]}, format="json")
    assert bulk.status_code == 201, bulk.content
    assert [shoot["id"] for shoot in bulk.json()] == [first["id"], first["id"]]


def test_pool_allocation_reads_the_pool_without_a_join(c: dict[str, APIClient]) -> None:
    pool = Pool.objects.get(name="openstack-eu-de-1")
    url = f"/api/v1/pools/{pool.pk}/allocations/"
    response, sql = statements(lambda: c["admin"].post(url, {"prefix_length": 64}, format="json"))
    assert response.status_code == 201, response.content
    selects = [q for q in sql if q.lstrip().upper().startswith("SELECT")]
    assert tables(sql, "SELECT")[:2] == ["accounts_apitoken", "allocations_pool"]
    assert " JOIN " not in selects[1]
    # the claim of a free block (and the rest of it, if it was split), the allocation, the outbox
    # row of the durable subscriber (outbound events), and last its audit event: the audit chain's
    # lock is held from there to COMMIT, and nothing else runs inside it
    assert tables(sql, "INSERT")[-3:] == [
        "allocations_allocation",
        "events_outboxmessage",
        "audit_auditevent",
    ]
    assert appends_audit(sql[-1])
    if connection.vendor == "postgresql":  # one statement takes the lock, reads the head and inserts
        assert not any("FROM audit_auditevent" in q for q in sql)
    else:  # the write lock is SQLite's; the head is read just before
        assert "FROM audit_auditevent" in sql[-2]
    assert len(sql) <= (6 if connection.vendor == "postgresql" else 7), "\n".join(sql)
    assert response.json() == drf.ModelSerializer.to_representation(
        s.AllocationSerializer(), Allocation.objects.get(pk=response.json()["id"])
    )


def test_an_operator_request_reads_its_role_and_projects_once(c: dict[str, APIClient]) -> None:
    response, sql = statements(lambda: c["op-in"].post("/api/v1/shoots/", SHOOT, format="json"))
    assert response.status_code == 201, response.content
    assert sum("auth_user_groups" in q for q in sql) == 1
    assert sum("accounts_projectmembership" in q for q in sql) == 1
    refused, sql = statements(lambda: c["op-out"].post("/api/v1/shoots/", SHOOT, format="json"))
    assert_error(refused, 403)
    assert sum("auth_user_groups" in q for q in sql) == 1


def test_a_membership_added_counts_for_the_same_user_object(landscape: dict[str, str]) -> None:
    user = get_user_model().objects.get(username="op-out")
    assert roles.user_role(user) == roles.OPERATOR and not roles.may_write_project(user, "late")
    account_services.membership_add(user=user, project="late", actor=SETUP)
    assert roles.may_write_project(user, "late")
    roles.forget(user)  # forgetting what was never read is harmless
    roles.forget(get_user_model()(username="new"))


# --- output serializers built once per class --------------------------------------------


def stock(serializer_class: type[drf.ModelSerializer], instance: Any) -> dict[str, Any]:
    """What DRF's ModelSerializer answers, fields built for this one instance."""
    return drf.ModelSerializer.to_representation(serializer_class(), instance)


def test_prebuilt_output_serializers_answer_as_drf_does(
    landscape: dict[str, str], actor: Any, c: dict[str, APIClient]
) -> None:
    shoot = Shoot.objects.get(name="openstack-ds")
    services.shoot_release(
        shoot=services.shoot_allocate(**{**SHOOT, "seed": Seed.objects.get()}, actor=actor)[0], actor=actor
    )
    services.pool_allocate(pool=Pool.objects.get(name="openstack-eu-de-1"), prefix_length=64, actor=actor)
    cases: list[tuple[type[drf.ModelSerializer], Any]] = [
        (s.PoolSerializer, Pool.objects.all()),
        (s.AllocationSerializer, Allocation.objects.select_related("shoot")),
        (s.SeedSerializer, Seed.objects.all()),
        (s.NodeSerializer, Node.objects.select_related("pod_allocation")),
        (s.ShootSerializer, Shoot.objects.select_related("seed")),
    ]
    for serializer_class, rows in cases:
        assert rows, serializer_class
        for row in rows:
            assert serializer_class(row).data == stock(serializer_class, row), (serializer_class, row)
        many = serializer_class(list(rows), many=True).data
        assert many == [stock(serializer_class, row) for row in rows]  # type: ignore[comparison-overlap]  # the stubs type many=True data as ReturnDict; it is a ReturnList
    assert Pool.objects.filter(parent__isnull=False).exists()  # related ids were compared too
    assert Shoot.objects.filter(deleted_at__isnull=False).exists()
    # the API answers with these serializers
    assert c["admin"].get(f"/api/v1/shoots/{shoot.pk}/").json() == stock(s.ShootSerializer, shoot)


def test_prebuilt_fields_are_per_class_and_bound_once() -> None:
    fields = s.AllocationSerializer._output_fields()
    assert fields is s.AllocationSerializer._output_fields()
    assert [f.field_name for f, _ in fields] == list(s.AllocationSerializer.Meta.fields)
    assert {name for _, name in fields if name} == {"get_shoot_name", "get_node"}
    assert s.ShootSerializer._output_fields() is not fields
