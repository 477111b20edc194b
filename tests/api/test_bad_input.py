"""A corpus of bad input against the real API endpoints, as an admin.

Every case must be refused with a 4xx JSON error ``{"detail", "code", "errors"}``
that names the field to blame (when one is), never HTML and never a 5xx, and
must write nothing: no pool, allocation, free block, seed, shoot, node, token or
audit event appears or disappears.

URLs and bodies name the landscape's objects as ``{pool6}`` / ``"@pool6"`` (see
``targets``). Cases run on the module's ``landscape`` (demo data loaded once),
each in its own savepoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from rest_framework.test import APIClient

from allocations import services
from allocations.models import Allocation, Node, Pool, Seed, Shoot
from audit.models import AuditEvent
from audit.services import Actor

from .conftest import assert_error, bearer, nothing_written, row_counts, survive_server_error

pytestmark = pytest.mark.django_db

SETUP = Actor("bad-input-setup", "command")
HUGE = "99999999999999999999999"  # larger than any database integer
NO_BODY = object()


@dataclass(frozen=True)
class Bad:
    """One bad request and what it must get: a status (or several) and the field to blame."""

    method: str
    url: str
    body: Any = NO_BODY  # sent as JSON
    raw: str | bytes | None = None  # sent as is, with ``content_type``
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    status: int | tuple[int, ...] | None = 400
    field: str | None = None
    code: str | None = None
    credentials: bool = True  # False: no admin token (for cases that bring their own)
    audited: str | None = None  # the one audit event the refusal must leave (failed authentication)


def bad(case_id: str, method: str, url: str, **kwargs: Any) -> Any:
    return pytest.param(Bad(method, url, **kwargs), id=case_id)


def allocate(case_id: str, body: Any, *, pool: str = "pool6", **kwargs: Any) -> Any:
    return bad(case_id, "post", f"/api/v1/pools/{{{pool}}}/allocations/", body=body, **kwargs)


SEED = {
    "name": "seed-x",
    "provider": "openstack",
    "region": "eu-de-1",
    "pods": ["100.96.0.0/11"],
    "services": ["100.64.0.0/13"],
}
SHOOT = {
    "project": "p1",
    "name": "s1",
    "seed": "seed-eu-de-1",
    "provider": "openstack",
    "region": "eu-de-1",
}
POOL = {"name": "lab", "cidr": "2001:db9::/32"}
NODE = {"name": "node-c", "ipv6_address": "2001:db8::12"}


def seed(case_id: str, status: int = 400, field: str | None = None, **changes: Any) -> Any:
    return bad(case_id, "post", "/api/v1/seeds/", body={**SEED, **changes}, status=status, field=field)


def shoot(case_id: str, status: int = 400, field: str | None = None, **changes: Any) -> Any:
    return bad(case_id, "post", "/api/v1/shoots/", body={**SHOOT, **changes}, status=status, field=field)


def pool(case_id: str, status: int = 400, field: str | None = None, **changes: Any) -> Any:
    return bad(case_id, "post", "/api/v1/pools/", body={**POOL, **changes}, status=status, field=field)


def patch_pool(case_id: str, body: Any, status: int = 400, field: str | None = None, **kwargs: Any) -> Any:
    return bad(case_id, "patch", "/api/v1/pools/{pool6}/", body=body, status=status, field=field, **kwargs)


def node(case_id: str, status: int = 400, field: str | None = None, **changes: Any) -> Any:
    body = {**NODE, **changes}
    return bad(case_id, "post", "/api/v1/shoots/{shoot}/nodes/", body=body, status=status, field=field)


def token(case_id: str, body: Any, status: int = 400, field: str | None = None) -> Any:
    return bad(case_id, "post", "/api/v1/tokens/", body=body, status=status, field=field)


def release(case_id: str, body: Any, status: int = 400, field: str | None = None) -> Any:
    return bad(case_id, "post", "/api/v1/allocations/{alloc}/release/", body=body, status=status, field=field)


def query(case_id: str, url: str, field: str | None, status: int | tuple[int, ...] = 400) -> Any:
    return bad(case_id, "get", url, status=status, field=field)


ALLOCATIONS = [
    # malformed and host-bit CIDRs
    allocate("cidr-not-a-cidr", {"cidr": "nope"}, field="cidr"),
    allocate("cidr-host-bits", {"cidr": "2001:db8::1/64"}, field="cidr", code="not_aligned"),
    allocate("cidr-length-129", {"cidr": "2001:db8::/129"}, field="cidr"),
    allocate("cidr-negative-length", {"cidr": "2001:db8::/-1"}, field="cidr"),
    allocate("cidr-float-length", {"cidr": "2001:db8::/48.0"}, field="cidr"),
    allocate("cidr-hex-length", {"cidr": "2001:db8::/0x30"}, field="cidr"),
    allocate("cidr-without-length", {"cidr": "2001:db8::"}, field="cidr"),
    allocate("cidr-outside-pool", {"cidr": "2001:db9::/48"}, field="cidr"),
    allocate("cidr-already-allocated", {"cidr": "2001:db8::/48"}, status=409, field="cidr"),
    # wrong family, IPv4-mapped, zone ids, unicode
    allocate("cidr-ipv4-into-ipv6-pool", {"cidr": "10.0.0.0/8"}, field="cidr", code="wrong_family"),
    allocate("cidr-ipv6-into-ipv4-pool", {"cidr": "2001:db8:ff::/48"}, pool="pool4", field="cidr"),
    allocate("cidr-ipv4-mapped", {"cidr": "::ffff:10.0.0.0/104"}, field="cidr"),
    allocate("cidr-zone-id", {"cidr": "fe80::1%eth0/64"}, field="cidr"),
    allocate("cidr-full-width-digits", {"cidr": "２００１:db8::/48"}, field="cidr"),
    allocate("cidr-rtl-override", {"cidr": "2001:db8::/48\u202e"}, field="cidr"),
    allocate("cidr-emoji", {"cidr": "🙂/48"}, field="cidr"),
    # wrong types and sizes
    allocate("cidr-blank", {"cidr": ""}, field="cidr"),
    allocate("cidr-whitespace", {"cidr": "  "}, field="cidr"),
    allocate("cidr-null", {"cidr": None}, field="cidr"),
    allocate("cidr-number", {"cidr": 5}, field="cidr"),
    allocate("cidr-list", {"cidr": ["2001:db8:ff::/48"]}, field="cidr"),
    allocate("cidr-object", {"cidr": {}}, field="cidr"),
    allocate("cidr-boolean", {"cidr": True}, field="cidr"),
    allocate("cidr-200-chars", {"cidr": "2001:db8::/48" + "0" * 200}, field="cidr"),
    allocate("cidr-sql", {"cidr": "'; DROP TABLE allocations_allocation; --"}, field="cidr"),
    allocate("cidr-html", {"cidr": "<script>alert(1)</script>"}, field="cidr"),
    allocate(
        "cidr-and-length-disagree", {"cidr": "2001:db8:ff::/48", "prefix_length": 56}, field="prefix_length"
    ),
    # prefix lengths out of range, negative, > 128, strings, floats, booleans
    allocate("length-negative", {"prefix_length": -1}, field="prefix_length"),
    allocate("length-129", {"prefix_length": 129}, field="prefix_length"),
    allocate("length-huge", {"prefix_length": 10**30}, field="prefix_length"),
    allocate("length-zero", {"prefix_length": 0}, field="prefix_length"),
    allocate("length-shorter-than-pool", {"prefix_length": 16}, field="prefix_length"),
    allocate("length-ipv6-size-in-ipv4-pool", {"prefix_length": 64}, pool="pool4", field="prefix_length"),
    allocate("length-word", {"prefix_length": "abc"}, field="prefix_length"),
    allocate("length-numeric-string", {"prefix_length": "56"}, field="prefix_length"),
    allocate("length-float", {"prefix_length": 56.5}, field="prefix_length"),
    allocate("length-true", {"prefix_length": True}, field="prefix_length"),
    allocate("length-false", {"prefix_length": False}, field="prefix_length"),
    allocate("length-null", {"prefix_length": None}, field="prefix_length"),
    allocate("length-list", {"prefix_length": [56]}, field="prefix_length"),
    # the other fields
    allocate(
        "hold-in-the-past", {"prefix_length": 64, "hold_until": "2000-01-01T00:00:00Z"}, field="hold_until"
    ),
    allocate("hold-not-a-date", {"prefix_length": 64, "hold_until": "tomorrow"}, field="hold_until"),
    allocate("owner-type-not-allowed", {"prefix_length": 64, "owner_type": "shoot"}, field="owner_type"),
    allocate("role-unknown", {"prefix_length": 64, "role": "boss"}, field="role"),
    allocate("project-too-long", {"prefix_length": 64, "project": "p" * 64}, field="project"),
    allocate("description-1mb", {"prefix_length": 64, "description": "x" * (1 << 20)}, field="description"),
    allocate("unknown-field", {"prefix_length": 64, "bogus": 1}, field="bogus"),
    allocate("project-list", {"prefix_length": 64, "project": ["garden-demo"]}, field="project"),
    allocate("project-object", {"prefix_length": 64, "project": {"a": 1}}, field="project"),
    # a manual allocation in a per-shoot pool is scoped by its label ("manual:<label>", 64 characters)
    allocate(
        "label-58-in-per-shoot-pool", {"prefix_length": 28, "label": "l" * 58}, pool="pool4", field="label"
    ),
    allocate(
        "hold-label-53-in-per-shoot-pool",
        {"prefix_length": 28, "label": "l" * 53, "hold_until": "2099-01-01T00:00:00Z"},
        pool="pool4",
        field="label",
    ),
    allocate("read-only-field", {"prefix_length": 64, "state": "released"}, field="state"),
    # JSON that is not an object, malformed JSON, odd JSON
    allocate("body-list", [], field="non_field_errors"),
    allocate("body-list-of-object", [{"prefix_length": 64}], field="non_field_errors"),
    allocate("body-string", "prefix_length=64", field="non_field_errors"),
    allocate("body-number", 64, field="non_field_errors"),
    bad("body-null", "post", "/api/v1/pools/{pool6}/allocations/", raw="null", field="non_field_errors"),
    bad("json-malformed", "post", "/api/v1/pools/{pool6}/allocations/", raw="{bad json", code="parse_error"),
    bad("json-not-utf8", "post", "/api/v1/pools/{pool6}/allocations/", raw=b"\xff\xfe{}", code="parse_error"),
    bad("json-nan", "post", "/api/v1/pools/{pool6}/allocations/", raw='{"prefix_length": NaN}'),
    bad("json-1e400", "post", "/api/v1/pools/{pool6}/allocations/", raw='{"prefix_length": 1e400}'),
    bad(
        "json-duplicate-key-last-wins",
        "post",
        "/api/v1/pools/{pool6}/allocations/",
        raw='{"prefix_length": 64, "prefix_length": 999}',
        field="prefix_length",
    ),
    bad(
        "json-lone-surrogate",
        "post",
        "/api/v1/pools/{pool6}/allocations/",
        raw='{"prefix_length": 64, "label": "\\ud800"}',
        field="label",
    ),
    bad(
        "json-nul-character",
        "post",
        "/api/v1/pools/{pool6}/allocations/",
        raw='{"prefix_length": 64, "label": "a\\u0000b"}',
        field="label",
    ),
    bad(
        "json-nested-100000-deep",
        "post",
        "/api/v1/pools/",
        raw='{"name": "deep", "cidr": "2001:db9::/32", "tags": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ),
    bad(
        "body-over-upload-limit",
        "post",
        "/api/v1/pools/{pool6}/allocations/",
        raw=json.dumps({"prefix_length": 64, "description": "x" * (3 << 20)}),
        status=(400, 413),
    ),
    # content types other than JSON
    bad(
        "form-urlencoded",
        "post",
        "/api/v1/pools/{pool6}/allocations/",
        raw="prefix_length=64",
        content_type="application/x-www-form-urlencoded",
        status=415,
    ),
    bad(
        "multipart",
        "post",
        "/api/v1/pools/",
        raw='--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nmp\r\n'
        '--b\r\nContent-Disposition: form-data; name="cidr"\r\n\r\n2001:db9::/32\r\n--b--\r\n',
        content_type="multipart/form-data; boundary=b",
        status=415,
    ),
    bad(
        "text-plain",
        "post",
        "/api/v1/pools/{pool6}/allocations/",
        raw='{"prefix_length": 64}',
        content_type="text/plain",
        status=415,
        code="unsupported_media_type",
    ),
    bad(
        "xml",
        "post",
        "/api/v1/pools/{pool6}/allocations/",
        raw="<prefix_length>64</prefix_length>",
        content_type="application/xml",
        status=415,
    ),
    bad(
        "octet-stream",
        "post",
        "/api/v1/pools/{pool6}/allocations/",
        raw=b'{"prefix_length": 64}',
        content_type="application/octet-stream",
        status=415,
    ),
    # headers
    allocate(
        "idempotency-key-256-chars",
        {"prefix_length": 64},
        headers={"HTTP_IDEMPOTENCY_KEY": "k" * 256},
        field="Idempotency-Key",
    ),
    allocate(
        "accept-html-still-json", {"prefix_length": 999}, headers={"HTTP_ACCEPT": "text/html"}, status=None
    ),
    bad(
        "format-api-still-json",
        "post",
        "/api/v1/pools/{pool6}/allocations/?format=api",
        body={"prefix_length": 999},
        status=None,
    ),
]

POOLS = [
    bad("pool-empty-body", "post", "/api/v1/pools/", body={}, field="name"),
    pool("pool-no-cidr-no-parent", cidr=NO_BODY, field="cidr"),
    pool("pool-host-bits", cidr="2001:db9::1/32", field="cidr"),
    pool("pool-ipv4-host-bits", cidr="192.168.0.1/16", field="cidr"),
    pool("pool-zone-id", cidr="fe80::%eth0/64", field="cidr"),
    pool("pool-ipv4-mapped", cidr="::ffff:192.168.0.0/112", field="cidr"),
    pool("pool-name-blank", name="   ", field="name"),
    pool("pool-name-1mb", name="n" * (1 << 20), field="name"),
    pool("pool-name-nul", name="a\x00b", field="name"),
    pool("pool-name-number", name=5, field="name"),
    pool("pool-name-taken", name="gua-2001-db8", status=409, field="name"),
    pool("pool-overlaps-root-pool", cidr="2001:db8::/33", status=409, field="cidr"),
    pool("pool-kind-unknown", kind="nope", field="kind"),
    pool("pool-uniqueness-unknown", uniqueness="sometimes", field="uniqueness"),
    pool("pool-purpose-unknown", purpose="x", field="purpose"),
    pool("pool-fit-policy-unknown", fit_policy="worst-fit", field="fit_policy"),
    pool("pool-provider-unknown", provider="ibm", field="provider"),
    pool("pool-default-length-outside", default_prefix_length=16, field="default_prefix_length"),
    pool("pool-default-length-string", default_prefix_length="48", field="default_prefix_length"),
    pool("pool-min-longer-than-max", min_prefix_length=64, max_prefix_length=48, field="min_prefix_length"),
    pool(
        "pool-ipv4-default-length-64",
        cidr="192.168.0.0/16",
        default_prefix_length=64,
        field="default_prefix_length",
    ),
    pool("pool-quota-negative", project_quota=-1, field="project_quota"),
    pool("pool-quota-beyond-bigint", project_quota=10**30, field="project_quota"),
    pool("pool-tags-string", tags="a,b", field="tags"),
    pool("pool-tags-null-item", tags=["a", None], field="tags[1]"),
    pool("pool-tags-101", tags=["t"] * 101, field="tags"),
    pool("pool-region-too-long", region="r" * 65, field="region"),
    pool("pool-parent-missing", parent=99999, field="parent"),
    pool("pool-parent-string", parent="gua-2001-db8", field="parent"),
    pool("pool-parent-numeric-string", cidr=NO_BODY, parent="@pool6-text", prefix_length=40, field="parent"),
    pool("pool-parent-float", cidr=NO_BODY, parent=1.0, prefix_length=40, field="parent"),
    pool(
        "pool-parent-length-too-short", cidr=NO_BODY, parent="@pool6", prefix_length=16, field="prefix_length"
    ),
    pool("pool-parent-and-foreign-cidr", parent="@pool6", cidr="10.0.0.0/8", field="cidr"),
    pool("pool-read-only-field", id=1, field="id"),
    patch_pool("patch-cidr", {"cidr": "2001:db9::/32"}, field="cidr"),
    patch_pool("patch-name", {"name": "renamed"}, field="name"),
    patch_pool("patch-default-length-outside", {"default_prefix_length": 16}, field="default_prefix_length"),
    patch_pool(
        "patch-min-longer-than-max",
        {"min_prefix_length": 64, "max_prefix_length": 48},
        field="min_prefix_length",
    ),
    patch_pool("patch-max-length-129", {"max_prefix_length": 129}, field="max_prefix_length"),
    patch_pool("patch-fit-policy-number", {"fit_policy": 1}, field="fit_policy"),
    patch_pool("patch-kind-null", {"kind": None}, field="kind"),
    patch_pool("patch-quota-word", {"project_quota": "lots"}, field="project_quota"),
    patch_pool("patch-quota-beyond-bigint", {"project_quota": 2**63}, field="project_quota"),
    patch_pool("patch-tags-object", {"tags": {"a": 1}}, field="tags"),
    patch_pool("patch-body-list", [{"description": "x"}], field="non_field_errors"),
    patch_pool(
        "patch-if-match-garbage",
        {"description": "x"},
        headers={"HTTP_IF_MATCH": "garbage"},
        status=412,
        code="precondition_failed",
    ),
    patch_pool(
        "patch-if-match-stale",
        {"description": "x"},
        headers={"HTTP_IF_MATCH": '"' + "0" * 32 + '"'},
        status=412,
    ),
    patch_pool("patch-if-match-non-ascii", {"description": "x"}, headers={"HTTP_IF_MATCH": "é"}, status=412),
    bad(
        "put-if-match-weak-list",
        "put",
        "/api/v1/pools/{pool6}/",
        body={"description": "x"},
        headers={"HTTP_IF_MATCH": 'W/"abc", "def"'},
        status=412,
    ),
    bad("delete-pool-with-children", "delete", "/api/v1/pools/{pool6}/", status=409, field="pool"),
]

SEEDS = [
    seed("seed-name-not-dns", name="Seed_X", field="name"),
    seed("seed-name-blank", name="", field="name"),
    seed("seed-name-taken", name="seed-eu-de-1", status=409, field="name"),
    seed("seed-provider-unknown", provider="ibm", field="provider"),
    seed("seed-region-null", region=None, field="region"),
    seed("seed-pods-string", pods="100.96.0.0/11", field="pods"),
    seed("seed-pods-empty", pods=[], field="pods"),
    seed("seed-pods-host-bits", pods=["100.96.0.1/11"], field="pods"),
    seed("seed-pods-zone-id", pods=["fe80::%eth0/64"], field="pods"),
    seed("seed-pods-full-width", pods=["１００.96.0.0/11"], field="pods"),
    seed("seed-pods-leading-zero", pods=["100.96.0.0/011"], field="pods"),
    seed("seed-pods-upper-case-ipv6", pods=["2001:DB8::/56"], ip_families=["IPv6"], field="pods"),
    seed("seed-pods-ipv6-for-ipv4-seed", pods=["2001:db8::/64"], field="pods"),
    seed("seed-services-ipv4-mapped", services=["::ffff:10.0.0.0/104"], field="services"),
    seed("seed-services-overlap-pods", services=["100.96.0.0/13"], field="services"),
    seed("seed-nodes-number", nodes=[5], field="nodes[0]"),
    seed("seed-nodes-five", nodes=[f"10.{i}.0.0/16" for i in range(5)], field="nodes"),
    seed("seed-block-cidrs-garbage", block_cidrs=["nope"], field="block_cidrs"),
    seed("seed-shoot-default-pods-garbage", shoot_default_pods=["x"], field="shoot_default_pods"),
    seed("seed-ip-families-unknown", ip_families=["IPv5"], field="ip_families"),
    seed("seed-ip-families-duplicate", ip_families=["IPv4", "IPv4"], field="ip_families"),
    seed("seed-ip-families-string", ip_families="IPv4", field="ip_families"),
    seed("seed-ip-families-empty", ip_families=[], field="ip_families"),
]

SHOOTS = [
    bad("shoot-empty-body", "post", "/api/v1/shoots/", body={}, field="project"),
    shoot("shoot-project-upper-case", project="P1", field="project"),
    shoot("shoot-project-blank", project="", field="project"),
    shoot("shoot-project-64-chars", project="p" * 64, field="project"),
    shoot("shoot-project-sql", project="'; DROP TABLE allocations_shoot; --", field="project"),
    shoot("shoot-name-underscore", name="a_b", field="name"),
    shoot("shoot-name-leading-dash", name="-a", field="name"),
    shoot("shoot-name-emoji", name="😀", field="name"),
    shoot("shoot-name-rtl-override", name="s1\u202e", field="name"),
    shoot("shoot-name-number", name=1, field="name"),
    shoot("shoot-seed-unknown", seed="nope", field="seed"),
    shoot("shoot-seed-null", seed=None, field="seed"),
    shoot("shoot-provider-unknown", provider="ibm", field="provider"),
    shoot("shoot-region-blank", region="", field="region"),
    shoot("shoot-ip-families-ipv6-only", ip_families=["IPv6"], field="ip_families"),
    shoot("shoot-ip-families-three", ip_families=["IPv4", "IPv6", "IPv4"], field="ip_families"),
    shoot("shoot-ip-families-duplicate", ip_families=["IPv4", "IPv4"], field="ip_families"),
    shoot("shoot-ip-families-empty", ip_families=[], field="ip_families"),
    shoot("shoot-ip-families-string", ip_families="IPv4", field="ip_families"),
    shoot("shoot-ip-families-null-item", ip_families=[None], field="ip_families[0]"),
    shoot("shoot-layout-unknown", layout="nope", field="layout"),
    shoot("shoot-layout-of-other-provider", layout="aws", field="layout"),
    shoot("shoot-zones-zero", zones=0, field="zones"),
    shoot("shoot-zones-86", zones=86, field="zones"),
    shoot("shoot-zones-negative", zones=-1, field="zones"),
    shoot("shoot-zones-float", zones=1.5, field="zones"),
    shoot("shoot-zones-boolean", zones=True, field="zones"),
    shoot("shoot-zones-numeric-string", zones="3", field="zones"),
    shoot("shoot-unknown-field", extra=1, field="extra"),
    # refused after the IPv4 ranges were taken: the whole shoot must roll back
    shoot("shoot-no-ipv6-pool-rolls-back", provider="aws", status=409, field="region"),
    shoot(
        "shoot-exists-with-other-zones",
        project="garden-demo",
        name="openstack-ds",
        zones=2,
        status=409,
        field="zones",
    ),
]

NODES = [
    bad("node-empty-body", "post", "/api/v1/shoots/{shoot}/nodes/", body={}, field="name"),
    node("node-ipv4-address", ipv6_address="10.0.0.1", field="ipv6_address"),
    node("node-outside-node-range", ipv6_address="2001:db9::1", field="ipv6_address"),
    node("node-not-an-address", ipv6_address="nope", field="ipv6_address"),
    node("node-prefix-not-address", ipv6_address="2001:db8::/64", field="ipv6_address"),
    node("node-zone-id", ipv6_address="fe80::1%eth0", field="ipv6_address"),
    node("node-ipv4-mapped", ipv6_address="::ffff:10.0.0.1", field="ipv6_address"),
    node("node-full-width", ipv6_address="２００１:db8::12", field="ipv6_address"),
    node("node-address-number", ipv6_address=5, field="ipv6_address"),
    node("node-address-null", ipv6_address=None, field="ipv6_address"),
    node("node-name-blank", name="", field="name"),
    node("node-name-254-chars", name="n" * 254, field="name"),
    node("node-name-101-chars", name="n" * 101, field="name"),  # the pod range's label holds 100
    node("node-unknown-field", pods="2001:db8::/112", field="pods"),
    node("node-name-taken-other-address", name="node-a", status=409, field="ipv6_address"),
    node("node-address-of-other-node", ipv6_address="2001:db8::10", status=409, field="ipv6_address"),
    bad(
        "node-on-ipv4-only-shoot",
        "post",
        "/api/v1/shoots/{legacy}/nodes/",
        body=NODE,
        status=409,
        field="shoot",
    ),
    bad("node-on-missing-shoot", "post", "/api/v1/shoots/999999/nodes/", body=NODE, status=404),
    bad("nodes-of-missing-shoot", "get", "/api/v1/shoots/999999/nodes/", status=404),
    bad("nodes-of-huge-shoot-id", "get", f"/api/v1/shoots/{HUGE}/nodes/", status=404),
    bad("node-of-huge-shoot-id", "get", f"/api/v1/shoots/{HUGE}/nodes/1/", status=404),
]

TOKENS = [
    token("token-empty-body", {}, field="name"),
    token("token-name-blank", {"name": ""}, field="name"),
    token("token-name-101-chars", {"name": "t" * 101}, field="name"),
    token("token-expiry-past", {"name": "t", "expires_at": "2000-01-01T00:00:00Z"}, field="expires_at"),
    token("token-expiry-word", {"name": "t", "expires_at": "soon"}, field="expires_at"),
    token("token-expiry-number", {"name": "t", "expires_at": 12345}, field="expires_at"),
    token(
        "token-expiry-year-10000", {"name": "t", "expires_at": "10000-01-01T00:00:00Z"}, field="expires_at"
    ),
    token(
        "token-expiry-february-30", {"name": "t", "expires_at": "2030-02-30T00:00:00Z"}, field="expires_at"
    ),
    token(
        "token-expiry-before-year-1",
        {"name": "t", "expires_at": "0001-01-01T00:00:00+01:00"},
        field="expires_at",
    ),
    token("token-read-only-maybe", {"name": "t", "read_only": "maybe"}, field="read_only"),
    token("token-user-unknown", {"name": "t", "user": "nobody"}, field="user"),
    token("token-key-given", {"name": "t", "key": "ipam_x_y"}, field="key"),
    bad("token-revoke-missing", "post", "/api/v1/tokens/999999/revoke/", status=404),
]

RELEASES = [
    release("release-negative-quarantine", {"quarantine_seconds": -1}, field="quarantine_seconds"),
    release("release-quarantine-word", {"quarantine_seconds": "abc"}, field="quarantine_seconds"),
    release("release-quarantine-float", {"quarantine_seconds": 1.5}, field="quarantine_seconds"),
    release("release-quarantine-boolean", {"quarantine_seconds": True}, field="quarantine_seconds"),
    release(
        "release-quarantine-11-years", {"quarantine_seconds": 11 * 365 * 86400}, field="quarantine_seconds"
    ),
    release("release-unknown-field", {"now": True}, field="now"),
    release("release-body-list", [1], field="non_field_errors"),
    release("release-body-string", "now", field="non_field_errors"),
    bad(
        "delete-negative-quarantine",
        "delete",
        "/api/v1/allocations/{alloc}/",
        body={"quarantine_seconds": -1},
        field="quarantine_seconds",
    ),
    bad(
        "release-released",
        "post",
        "/api/v1/allocations/{released}/release/",
        body={},
        status=409,
        field="state",
    ),
    bad(
        "release-with-live-child-pool",
        "post",
        "/api/v1/allocations/{carved}/release/",
        body={},
        status=409,
        field="allocation",
    ),
    bad("release-missing", "post", "/api/v1/allocations/999999/release/", body={}, status=404),
    bad("put-allocation", "put", "/api/v1/allocations/{alloc}/", body={"cidr": "10.9.9.0/24"}, status=405),
]

QUERIES = [
    query("lookup-missing-q", "/api/v1/lookup/", "q"),
    query("lookup-blank", "/api/v1/lookup/?q=", "q"),
    query("lookup-word", "/api/v1/lookup/?q=nope", "q"),
    query("lookup-length-33", "/api/v1/lookup/?q=10.0.0.0/33", "q"),
    query("lookup-host-bits", "/api/v1/lookup/?q=10.0.0.1/24", "q"),
    query("lookup-zone-id", "/api/v1/lookup/?q=fe80::1%25eth0", "q"),
    query("lookup-ipv4-mapped-prefix", "/api/v1/lookup/?q=::ffff:10.0.0.0/104", "q"),
    query("lookup-full-width", "/api/v1/lookup/?q=%EF%BC%92001:db8::1", "q"),
    query("lookup-emoji", "/api/v1/lookup/?q=%F0%9F%99%82", "q"),
    query("lookup-101-chars", "/api/v1/lookup/?q=" + "1" * 101, "q"),
    query("lookup-sql", "/api/v1/lookup/?q=%27%3B%20DROP%20TABLE%20x%3B%20--", "q"),
    query("lookup-nul", "/api/v1/lookup/?q=%00", "q"),
    query("lookup-unknown-parameter", "/api/v1/lookup/?q=10.0.0.1&deep=1", "deep"),
    query("free-blocks-length-word", "/api/v1/pools/{pool6}/free-blocks/?prefix_length=abc", "prefix_length"),
    query(
        "free-blocks-length-negative", "/api/v1/pools/{pool6}/free-blocks/?prefix_length=-1", "prefix_length"
    ),
    query("free-blocks-length-129", "/api/v1/pools/{pool6}/free-blocks/?prefix_length=129", "prefix_length"),
    query(
        "free-blocks-length-float", "/api/v1/pools/{pool6}/free-blocks/?prefix_length=1.5", "prefix_length"
    ),
    query("free-blocks-length-empty", "/api/v1/pools/{pool6}/free-blocks/?prefix_length=", "prefix_length"),
    query(
        "free-blocks-length-true", "/api/v1/pools/{pool6}/free-blocks/?prefix_length=true", "prefix_length"
    ),
    query(
        "free-blocks-ipv6-length-in-ipv4-pool",
        "/api/v1/pools/{gpool4}/free-blocks/?prefix_length=64",
        "prefix_length",
    ),
    query("free-blocks-limit-zero", "/api/v1/pools/{pool6}/free-blocks/?limit=0", "limit"),
    query("free-blocks-limit-huge", "/api/v1/pools/{pool6}/free-blocks/?limit=100000", "limit"),
    query("free-blocks-unknown-parameter", "/api/v1/pools/{pool6}/free-blocks/?size=64", "size"),
    query("next-length-word", "/api/v1/pools/{pool6}/next/?prefix_length=abc", "prefix_length"),
    query("next-ipv6-length-in-ipv4-pool", "/api/v1/pools/{pool4}/next/?prefix_length=64", "prefix_length"),
    query("pools-contains-word", "/api/v1/pools/?contains=nope", "contains"),
    query("pools-contains-zone-id", "/api/v1/pools/?contains=fe80::1%25eth0", "contains"),
    query("pools-contains-length-129", "/api/v1/pools/?contains=2001:db8::/129", "contains"),
    query("pools-within-host-bits", "/api/v1/pools/?within=10.0.0.1/8", "within"),
    query("pools-within-garbage", "/api/v1/pools/?within=%3Cscript%3E", "within"),
    query("pools-family-5", "/api/v1/pools/?family=5", "family"),
    query("pools-parent-word", "/api/v1/pools/?parent=abc", "parent"),
    query("pools-retired-maybe", "/api/v1/pools/?retired=maybe", "retired"),
    query("pools-name-nul", "/api/v1/pools/?name=%00", "name"),
    query("allocations-contains-word", "/api/v1/allocations/?contains=nope", "contains"),
    query("allocations-within-full-width", "/api/v1/allocations/?within=%EF%BC%91.0.0.0/8", "within"),
    query("allocations-pool-word", "/api/v1/allocations/?pool=abc", "pool"),
    query("allocations-pool-fraction", "/api/v1/allocations/?pool=1.5", "pool"),
    query("allocations-state-unknown", "/api/v1/allocations/?state=zzz", "state"),
    query("shoots-family-ipv5", "/api/v1/shoots/?family=IPv5", "family"),
    query("shoots-state-unknown", "/api/v1/shoots/?state=nope", "state"),
    query("audit-since-word", "/api/v1/audit-events/?since=yesterday", "since"),
    query("audit-source-unknown", "/api/v1/audit-events/?source=nope", "source"),
    query("audit-object-id-nul", "/api/v1/audit-events/?object_id=%00", "object_id"),
    query("pools-page-zero", "/api/v1/pools/?page=0", "page", status=(400, 404)),
    query("allocations-page-negative", "/api/v1/allocations/?page=-1", "page", status=(400, 404)),
    query("shoots-page-word", "/api/v1/shoots/?page=abc", "page", status=(400, 404)),
    query("pools-page-size-negative", "/api/v1/pools/?page_size=-1", "page_size"),
    query("audit-page-size-word", "/api/v1/audit-events/?page_size=abc", "page_size"),
    query("pools-ordering-unknown", "/api/v1/pools/?ordering=nope", "ordering"),
    query("tokens-ordering-unknown", "/api/v1/tokens/?ordering=-secret", "ordering"),
    query("allocations-unknown-cidr", "/api/v1/allocations/?cidr=10.0.0.0/8", "cidr"),
    query("pools-unknown-bogus", "/api/v1/pools/?bogus=1", "bogus"),
    query("audit-unknown-username", "/api/v1/audit-events/?username=x", "username"),
    query("nodes-unknown-parameter", "/api/v1/shoots/{shoot}/nodes/?name=node-a", "name"),
    query("lookup-unknown-with-format", "/api/v1/lookup/?q=10.0.0.1&format=json&cidr=x", "cidr"),
    query("pool-id-word", "/api/v1/pools/abc/", None, status=404),
    query("pool-id-missing", "/api/v1/pools/999999/", None, status=404),
    query("pool-id-huge", f"/api/v1/pools/{HUGE}/", None, status=404),
    query("allocation-id-huge", f"/api/v1/allocations/{HUGE}/", None, status=404),
    query("gardener-of-missing-shoot", "/api/v1/shoots/999999/gardener/", None, status=404),
    query("unknown-api-path", "/api/v1/nope/", None, status=404),
]

AUTH = [
    bad(
        "auth-bearer-non-ascii",
        "get",
        "/api/v1/pools/",
        headers={"HTTP_AUTHORIZATION": "Bearer é"},
        status=401,
        credentials=False,
        audited="auth.token-invalid",
    ),
    bad(
        "auth-bearer-unknown",
        "get",
        "/api/v1/pools/",
        headers={"HTTP_AUTHORIZATION": "Bearer ipam_x_y"},
        status=401,
        credentials=False,
        audited="auth.token-invalid",
    ),
    bad(
        "auth-bearer-two-words",
        "get",
        "/api/v1/pools/",
        headers={"HTTP_AUTHORIZATION": "Bearer a b"},
        status=401,
        credentials=False,
        audited="auth.token-invalid",
    ),
    bad(
        "auth-bearer-10k-chars",
        "get",
        "/api/v1/pools/",
        headers={"HTTP_AUTHORIZATION": "Bearer ipam_" + "x" * 10_000 + "_y"},
        status=401,
        credentials=False,
        audited="auth.token-invalid",
    ),
]


def _alias_bomb() -> str:
    """Billion laughs (under 900 bytes): nine levels of ten aliases, 10⁹ Shoots once expanded."""
    levels = ["  a0: &a0 {kind: Shoot, metadata: {name: x, namespace: garden-p}}"]
    levels += [
        f"  a{i}: &a{i} {{kind: List, items: [{', '.join([f'*a{i - 1}'] * 10)}]}}" for i in range(1, 9)
    ]
    return "x:\n" + "\n".join(levels) + "\nkind: List\nitems: [" + ", ".join(["*a8"] * 10) + "]\n"


def gardener(case_id: str, **kwargs: Any) -> Any:
    return bad(case_id, "post", "/api/v1/gardener/import/?dry_run=true", field="manifest", **kwargs)


GARDENER = [
    gardener("gardener-yaml-alias-bomb", raw=_alias_bomb(), content_type="application/yaml"),
    gardener("gardener-alias-bomb-in-json-body", body={"manifest": _alias_bomb()}),
    gardener("gardener-500-nested-brackets", raw="[" * 500 + "]" * 500, content_type="application/yaml"),
    gardener("gardener-500-nested-in-json-manifest", body={"manifest": "[" * 500 + "]" * 500}),
    gardener(
        "gardener-500-nested-json-body",
        raw='{"kind": "Shoot", "spec": ' + "[" * 500 + "]" * 500 + "}",
    ),
    gardener("gardener-self-referencing-alias", raw="&a [*a]", content_type="application/yaml"),
    gardener(
        "gardener-self-referencing-list",
        raw="&a {kind: List, items: [*a]}",
        content_type="application/yaml",
    ),
]


def account(case_id: str, field: str = "endpoint", **changes: Any) -> Any:
    body = {"name": "acct-x", "type": "dry-run", "provider": "openstack", "region": "eu-x-1", **changes}
    return bad(case_id, "post", "/api/v1/provider-accounts/", body=body, field=field)


ACCOUNTS = [
    account("account-endpoint-cloud-metadata", endpoint="http://169.254.169.254/latest/meta-data/"),
    account("account-endpoint-private-network", endpoint="https://10.0.0.1:8443/"),
    account("account-endpoint-other-host", endpoint="https://attacker.example/"),
    account("account-endpoint-ipv6-mapped-metadata", endpoint="http://[::ffff:169.254.169.254]/"),
    account("account-credentials-file-outside", field="credentials_ref", credentials_ref="file:/dev/zero"),
    account(
        "account-credentials-file-dot-dot",
        field="credentials_ref",
        credentials_ref="file:/etc/ipam-portal/credentials/../../passwd",
    ),
]

CORPUS = [
    *ALLOCATIONS,
    *POOLS,
    *SEEDS,
    *SHOOTS,
    *NODES,
    *TOKENS,
    *RELEASES,
    *QUERIES,
    *AUTH,
    *GARDENER,
    *ACCOUNTS,
]


@pytest.fixture(scope="module")
def targets(landscape: dict[str, str], django_db_blocker: Any) -> dict[str, Any]:
    """Ids of the objects the corpus names, plus a few more made for it (inside the module's transaction)."""
    with django_db_blocker.unblock():
        root = Pool.objects.get(name="gua-2001-db8")
        gpool4 = services.pool_create(name="v4-global", cidr="192.0.2.0/24", kind="private", actor=SETUP)
        released = services.pool_allocate(pool=root, prefix_length=64, actor=SETUP)
        services.allocation_release(allocation=released, actor=SETUP, quarantine_seconds=0)
        demo_shoot = Shoot.objects.get(project="garden-demo", name="openstack-ds")
        return {
            "pool6": root.pk,
            "pool6-text": str(root.pk),
            "pool4": Pool.objects.get(name="ipv4-nodes").pk,
            "gpool4": gpool4.pk,
            "shoot": demo_shoot.pk,
            "legacy": Shoot.objects.get(project="garden-demo", name="legacy-v4").pk,
            "node": Node.objects.get(shoot=demo_shoot, name="node-a").pk,
            "alloc": Allocation.objects.get(shoot=demo_shoot, role="nodes", family=4, state="active").pk,
            "released": released.pk,
            "carved": Pool.objects.get(name="openstack-eu-de-1").parent_allocation_id,
        }


def no_raise(client: APIClient) -> APIClient:
    client.raise_request_exception = False  # a crash must show as the 500 a client would get
    return client


@pytest.fixture
def admin(landscape: dict[str, str], db: None) -> APIClient:
    return no_raise(bearer(landscape["admin"]))


def resolve(value: Any, ids: dict[str, Any]) -> Any:
    """Replace ``"@name"`` by the id of that target, anywhere in a body."""
    if isinstance(value, str) and value.startswith("@") and value[1:] in ids:
        return ids[value[1:]]
    if isinstance(value, dict):
        return {k: resolve(v, ids) for k, v in value.items() if v is not NO_BODY}
    if isinstance(value, list):
        return [resolve(v, ids) for v in value]
    return value


def send(client: APIClient, case: Bad, ids: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = dict(case.headers)
    if case.raw is not None:
        kwargs.update(data=case.raw, content_type=case.content_type)
    elif case.body is not NO_BODY:
        kwargs.update(data=json.dumps(resolve(case.body, ids)), content_type=case.content_type)
    method = getattr(client, case.method)
    return survive_server_error(lambda: method(case.url.format(**ids), **kwargs))


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 60
    assert len({p.id for p in CORPUS}) == len(CORPUS), "case ids must be unique"


@pytest.mark.parametrize("case", CORPUS)
def test_bad_input_is_refused_and_writes_nothing(
    admin: APIClient, targets: dict[str, Any], case: Bad
) -> None:
    client = admin if case.credentials else no_raise(APIClient())
    with nothing_written() if case.audited is None else only_audited(case.audited):
        response = send(client, case, targets)
    assert_error(response, case.status, case.field, case.code)


@contextmanager
def only_audited(action: str) -> Iterator[None]:
    """Like ``nothing_written``, except exactly one new audit event, ``action``."""
    before = row_counts()
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    yield
    assert list(AuditEvent.objects.filter(seq__gt=last).values_list("action", flat=True)) == [action]
    after = {**row_counts(), "AuditEvent": before["AuditEvent"]}
    assert after == before, f"a refused request wrote rows (before, after): {before}, {after}"


@pytest.mark.parametrize(
    ("url", "param"),
    [
        (f"/api/v1/allocations/?pool={HUGE}", "pool"),
        (f"/api/v1/allocations/?shoot={HUGE}", "shoot"),
        (f"/api/v1/pools/?parent={HUGE}", "parent"),
        ("/api/v1/audit-events/?since=9999-12-31T23:59:59-14:00", "since"),
        ("/api/v1/audit-events/?until=0001-01-01T00:00:00%2B14:00", "until"),
        ("/api/v1/audit-events/?until=2030-01-01T00:00:00-20:29", "until"),
        ("/api/v1/shoots/?family=IPv6", "family"),
    ],
    ids=[
        "allocations-pool-huge",
        "allocations-shoot-huge",
        "pools-parent-huge",
        "audit-since-9999",
        "audit-until-0001",
        "audit-until-offset-20h",
        "shoots-family-ipv6",
    ],
)
def test_edge_filter_values_never_crash(
    admin: APIClient, targets: dict[str, Any], url: str, param: str
) -> None:
    """Filter values at the edge of the database's range: a result (200) or a 400 naming them."""
    with nothing_written():
        response = survive_server_error(lambda: admin.get(url))
    assert response.status_code in (200, 400), (
        f"expected 200 or a 400 naming {param!r}, got {response.status_code}: {response.content[:300]!r}"
    )
    if response.status_code == 200:
        assert response["Content-Type"].startswith("application/json")
        assert "results" in response.json()
    else:
        assert_error(response, 400, param)


def test_idempotency_key_reused_with_other_body(admin: APIClient, targets: dict[str, Any]) -> None:
    """A refused request is remembered under its key: the same key with another body is a 422."""
    url = f"/api/v1/pools/{targets['pool6']}/allocations/"
    headers = {"HTTP_IDEMPOTENCY_KEY": "bad-input-1"}
    with nothing_written():
        first = admin.post(url, {"prefix_length": 999}, format="json", **headers)
        again = admin.post(url, {"prefix_length": 999}, format="json", **headers)
        other = admin.post(url, {"prefix_length": 998}, format="json", **headers)
    assert_error(first, 400, "prefix_length")
    assert_error(again, 400, "prefix_length")
    assert again["Idempotent-Replayed"] == "true"
    assert_error(other, 422, code="idempotency_key_reused")


def test_refused_shoot_leaves_no_trace(admin: APIClient, targets: dict[str, Any]) -> None:
    """The shoot whose IPv6 block cannot be found took IPv4 ranges first: all of it is rolled back."""
    before = AuditEvent.objects.count(), Seed.objects.count()
    response = admin.post("/api/v1/shoots/", {**SHOOT, "provider": "aws"}, format="json")
    assert_error(response, 409, "region", "no_pool")
    assert not Shoot.objects.filter(project="p1").exists()
    assert not Allocation.objects.filter(project="p1").exists()
    assert (AuditEvent.objects.count(), Seed.objects.count()) == before
