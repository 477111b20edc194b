"""A NetBox estate as plain data, read from NetBox's REST API objects or its CSV exports.

Pure Python, no Django, no network. NetBox's two documented shapes are read:

* REST API objects (``/api/ipam/prefixes/``, ``/api/ipam/aggregates/``,
  ``/api/ipam/vrfs/``, ``/api/tenancy/tenants/``): ``status`` is ``{"value",
  "label"}``, ``vrf``/``tenant`` nested objects (or null), ``tags`` a list of
  nested tags, ``family`` ``{"value": 4|6}``;
* CSV: the table export (column headers are the table's verbose names:
  ``ID``, ``Prefix`` — ``Aggregate`` in the aggregate table —, ``Status`` as its
  label, ``VRF`` as the VRF's name or ``Global``, ``Tenant`` as the tenant's
  name, ``Tags`` comma-separated) and the bulk-import format (``prefix``,
  ``status`` value, ``vrf``, ``tenant``, ``tags``, …). Headers are matched
  without regard to case.

Every refusal is an :class:`~ipam_portal.errors.IpamError` naming the field,
e.g. ``prefixes[3].prefix`` or ``prefixes.csv line 4: Status``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from allocations import prefixes
from allocations.errors import IpamError

from .spool import PrefixSpool

#: NetBox's own prefix statuses (PrefixStatusChoices); a deployment may add more (FIELD_CHOICES).
STATUSES = ("container", "active", "reserved", "deprecated")
AGGREGATE = "aggregate"  # the "status" of an aggregate: always a pool
GLOBAL_NAMES = {"", "global"}  # how the CSV export writes "no VRF"
PROJECT_MAX = 63  # Allocation.project: a Gardener project name


class InvalidNetbox(IpamError):
    """NetBox data that cannot be read: a missing or malformed field, an unknown format."""

    code = "invalid_netbox_data"


@dataclass(frozen=True)
class NetboxPrefix:
    """One NetBox prefix or aggregate (``kind``), its NetBox id and where it came from (``ref``)."""

    kind: str  # "prefix" or "aggregate"
    id: int | None
    net: prefixes.IPNetwork
    status: str  # a prefix's status value; "aggregate" for aggregates
    vrf: str | None = None  # the VRF's name; None: the global table
    tenant: str = ""  # the tenant's slug: the Gardener project
    description: str = ""
    tags: tuple[str, ...] = ()
    ref: str = ""

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.net.version, int(self.net.network_address), self.net.prefixlen)

    def who(self) -> dict[str, Any]:
        """How a report names it: NetBox type and id, prefix and VRF."""
        return {"type": self.kind, "id": self.id, "prefix": str(self.net), "vrf": self.vrf}

    def text(self) -> str:
        where = f" in VRF {self.vrf}" if self.vrf else ""
        ident = f" {self.id}" if self.id is not None else ""
        return f"{self.kind}{ident} {self.net}{where}"


@dataclass(frozen=True)
class NetboxVrf:
    id: int | None
    name: str
    rd: str = ""
    enforce_unique: bool = True


class Estate:
    """Everything read from one NetBox: prefixes and aggregates spooled to disk, VRFs and tenants in memory.

    The prefixes and aggregates go to a :class:`~netbox_import.spool.PrefixSpool`
    (a private temporary SQLite file) as they are read, a batch at a time, so an
    estate of any size holds O(VRFs + tenants) in memory; the planner reads them
    back in address order. Close it (``with estate:``) to delete the file; an
    estate that is collected unclosed deletes it too.
    """

    def __init__(self, *, source: str = "") -> None:
        self.vrfs: dict[str, NetboxVrf] = {}
        self.tenants: dict[str, str] = {}  # name -> slug
        self.source = source
        self.spool = PrefixSpool()

    def __enter__(self) -> Estate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.spool.close()

    def add(self, record: NetboxPrefix) -> None:
        """Spool one prefix or aggregate (input order is kept: NetBox's aggregates rank first)."""
        net = record.net
        self.spool.add(
            (
                0 if record.kind == AGGREGATE else 1,
                net.version,
                int(net.network_address),
                net.prefixlen,
                record.kind,
                record.id,
                record.status,
                record.vrf,
                record.tenant,
                record.description,
                json.dumps(record.tags),
                record.ref,
            )
        )

    @property
    def size(self) -> int:
        """How many prefixes and aggregates were read."""
        return self.spool.count


def spooled(row: tuple[Any, ...]) -> tuple[int, int, NetboxPrefix]:
    """A row of the spool (:data:`netbox_import.spool.PAYLOAD` order) as ``(seq, rank, record)``."""
    seq, rank, family, first, length, kind, id_, status, vrf, tenant, description, tags, ref = row
    net = prefixes.make_network(prefixes.from_key(first), length, family)
    record = NetboxPrefix(
        kind=kind,
        id=id_,
        net=net,
        status=status,
        vrf=vrf,
        tenant=tenant,
        description=description,
        tags=tuple(json.loads(tags)),
        ref=ref,
    )
    return seq, rank, record


# --------------------------------------------------------------------------- cells


def _text(value: Any, field: str, *, limit: int = 10_000) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InvalidNetbox(f"expected text, got {type(value).__name__}", field=field)
    text = str(value).strip()
    if len(text) > limit:
        raise InvalidNetbox(f"longer than {limit} characters", field=field)
    return text


def _id(value: Any, field: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise InvalidNetbox("a NetBox id is a whole number", field=field)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidNetbox(f"{value!r} is not a NetBox id (a whole number)", field=field) from None
    if number < 1:
        raise InvalidNetbox(f"{number} is not a NetBox id (ids start at 1)", field=field)
    return number


def _choice_value(value: Any, field: str) -> str:
    """A NetBox choice: ``{"value": ..., "label": ...}`` (API), the value or the label (CSV)."""
    if isinstance(value, Mapping):
        value = value.get("value")
    return _text(value, field).lower()


def _nested_name(value: Any, field: str, key: str = "name") -> str:
    """A nested object's ``key`` (API), or the text itself (CSV: the name)."""
    if isinstance(value, Mapping):
        return _text(value.get(key) or value.get("name"), f"{field}.{key}", limit=200)
    return _text(value, field, limit=200)


def _tags(value: Any, field: str) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str):  # the CSV export: "alpha,beta"
        return tuple(t.strip() for t in value.split(",") if t.strip())
    if not isinstance(value, list):
        raise InvalidNetbox("tags are a list of tags (or comma-separated names)", field=field)
    out = []
    for i, tag in enumerate(value):
        name = _nested_name(tag, f"{field}[{i}]", "slug")
        if name:
            out.append(name)
    return tuple(out)


_SLUG_DROP = re.compile(r"[^a-z0-9_-]+")


def slugify(name: str) -> str:
    """NetBox's slug of a name as its UI proposes it (lower case, dashes)."""
    return _SLUG_DROP.sub("-", name.lower()).strip("-")


def _tenant(value: Any, field: str, tenants: Mapping[str, str]) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, Mapping):
        slug = _text(value.get("slug"), f"{field}.slug", limit=200)
        if not slug:
            raise InvalidNetbox("a tenant needs its slug", field=f"{field}.slug")
    else:
        name = _text(value, field, limit=200)
        slug = tenants.get(name) or tenants.get(name.lower()) or slugify(name)
    if len(slug) > PROJECT_MAX:
        raise InvalidNetbox(
            f"tenant slug {slug!r} is longer than {PROJECT_MAX} characters (a Gardener project name)",
            field=field,
        )
    return slug


def _vrf(value: Any, field: str) -> str | None:
    name = _nested_name(value, field)
    return None if name.lower() in GLOBAL_NAMES else name


def _bool(value: Any, field: str, default: bool) -> bool:
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "1", "✔"}:
        return True
    if text in {"false", "no", "0", "✘"}:
        return False
    raise InvalidNetbox(f"{value!r} is not true or false", field=field)


# --------------------------------------------------------------------------- objects


def prefix_from(
    obj: Mapping[str, Any],
    *,
    ref: str,
    kind: str = "prefix",
    tenants: Mapping[str, str] | None = None,
    fields: Mapping[str, str] | None = None,
) -> NetboxPrefix:
    """One prefix or aggregate from an API object or a CSV row (``fields``: our name -> the row's key)."""
    tenants = tenants or {}
    names = fields or {}

    def get(name: str) -> Any:
        return obj.get(names.get(name, name))

    def at(name: str) -> str:
        return f"{ref}.{names.get(name, name)}" if not ref.endswith(":") else f"{ref} {names.get(name, name)}"

    if not isinstance(obj, Mapping):
        raise InvalidNetbox(f"expected a NetBox {kind} object", field=ref)
    raw = get("prefix")
    if raw in (None, ""):
        raise InvalidNetbox(f"a NetBox {kind} needs its prefix", field=at("prefix"))
    net = prefixes.parse_prefix(raw, field=at("prefix"))
    family = get("family")
    if isinstance(family, Mapping):
        family = family.get("value")
    if family not in (None, "") and str(family).strip().lower() not in {
        str(net.version),
        f"ipv{net.version}",
    }:
        raise InvalidNetbox(f"family {family} does not match {net}", field=at("family"))
    if kind == AGGREGATE:
        status, vrf = AGGREGATE, None
    else:
        status = _choice_value(get("status"), at("status")) or "active"  # NetBox's default status
        vrf = _vrf(get("vrf"), at("vrf"))
    return NetboxPrefix(
        kind=kind,
        id=_id(get("id"), at("id")),
        net=net,
        status=status,
        vrf=vrf,
        tenant=_tenant(get("tenant"), at("tenant"), tenants),
        description=_text(get("description"), at("description"), limit=200),
        tags=_tags(get("tags"), at("tags")),
        ref=ref,
    )


def vrf_from(obj: Mapping[str, Any], *, ref: str, fields: Mapping[str, str] | None = None) -> NetboxVrf:
    names = fields or {}

    def get(name: str) -> Any:
        return obj.get(names.get(name, name))

    if not isinstance(obj, Mapping):
        raise InvalidNetbox("expected a NetBox VRF object", field=ref)
    name = _text(get("name"), f"{ref}.name", limit=100)
    if not name:
        raise InvalidNetbox("a VRF needs its name", field=f"{ref}.name")
    return NetboxVrf(
        id=_id(get("id"), f"{ref}.id"),
        name=name,
        rd=_text(get("rd"), f"{ref}.rd", limit=21),
        enforce_unique=_bool(get("enforce_unique"), f"{ref}.enforce_unique", True),
    )


def tenant_from(obj: Mapping[str, Any], *, ref: str) -> tuple[str, str]:
    """A tenant as (name, slug)."""
    if not isinstance(obj, Mapping):
        raise InvalidNetbox("expected a NetBox tenant object", field=ref)
    name = _text(obj.get("name"), f"{ref}.name", limit=100)
    slug = _text(obj.get("slug"), f"{ref}.slug", limit=100) or slugify(name)
    if not name:
        raise InvalidNetbox("a tenant needs its name", field=f"{ref}.name")
    return name, slug


def estate_from_objects(
    *,
    prefixes: Iterable[Any] = (),
    aggregates: Iterable[Any] = (),
    vrfs: Iterable[Any] = (),
    tenants: Iterable[Any] = (),
    source: str = "json",
) -> Estate:
    """An estate from NetBox API objects (the ``results`` of each endpoint's pages).

    Each iterable is read once, in this order: tenants, VRFs, aggregates, prefixes
    (a generator of pages is read page by page: the prefixes go to the spool).
    """
    estate = Estate(source=source)
    try:
        for i, obj in enumerate(tenants):
            name, slug = tenant_from(obj, ref=f"tenants[{i}]")
            estate.tenants[name] = slug
        for i, obj in enumerate(vrfs):
            vrf = vrf_from(obj, ref=f"vrfs[{i}]")
            estate.vrfs[vrf.name] = vrf
        for i, obj in enumerate(aggregates):
            estate.add(prefix_from(obj, ref=f"aggregates[{i}]", kind=AGGREGATE, tenants=estate.tenants))
        for i, obj in enumerate(prefixes):
            estate.add(prefix_from(obj, ref=f"prefixes[{i}]", tenants=estate.tenants))
    except BaseException:
        estate.close()
        raise
    return estate


# --------------------------------------------------------------------------- CSV

#: CSV headers (lower case) of NetBox's table export and bulk import -> our field names.
_HEADERS = {
    "id": "id",
    "prefix": "prefix",
    "aggregate": "prefix",  # the aggregate table's column
    "status": "status",
    "vrf": "vrf",
    "tenant": "tenant",
    "description": "description",
    "tags": "tags",
    "family": "family",
    "name": "name",
    "slug": "slug",
    "rd": "rd",
    "enforce unique": "enforce_unique",
    "enforce_unique": "enforce_unique",
}


def csv_kind(header: Iterable[str]) -> str:
    """Which NetBox export a CSV header is: ``prefixes``, ``aggregates``, ``vrfs`` or ``tenants``."""
    cols = {h.strip().lower() for h in header}
    if "aggregate" in cols or ("prefix" in cols and "rir" in cols):
        return "aggregates"
    if "prefix" in cols:
        return "prefixes"
    if "rd" in cols or "enforce unique" in cols or "enforce_unique" in cols:
        return "vrfs"
    if "name" in cols:
        return "tenants"
    raise InvalidNetbox(
        "not a NetBox prefix, aggregate, VRF or tenant export: no Prefix, Aggregate, RD or Name column",
        field="csv",
    )


#: A CSV export: its whole text, or its lines (an open text file, read once).
CsvLines = str | Iterable[str] | TextIO


def _reader(lines: CsvLines, origin: str) -> tuple[Iterator[list[str]], list[str]]:
    """A CSV reader over ``lines`` (a leading BOM dropped) and its header row."""
    if isinstance(lines, str):
        lines = io.StringIO(lines.lstrip("\ufeff"))
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidNetbox("the CSV export is empty", field=origin) from None
    except csv.Error as exc:
        raise InvalidNetbox(f"not CSV: {exc}", field=origin) from None
    if header:
        header[0] = header[0].lstrip("\ufeff")
    return reader, header


def read_csv(
    text: CsvLines, *, origin: str = "csv", kind: str | None = None, estate: Estate | None = None
) -> Estate:
    """Add one CSV export to ``estate`` (a new one by default); ``kind`` is guessed from the header.

    Read tenants and VRFs before prefixes: a prefix's ``Tenant`` column is the
    tenant's name, turned into its slug through the tenants read so far. ``text``
    may be an open file: it is read a line at a time, the prefixes spooled.
    """
    reader, header = _reader(text, origin)
    return _read_rows(reader, header, origin=origin, kind=kind, estate=estate or Estate(source=origin))


def _read_rows(
    reader: Iterator[list[str]], header: list[str], *, origin: str, kind: str | None, estate: Estate
) -> Estate:
    kind = kind or csv_kind(header)
    names = [_HEADERS.get(h.strip().lower(), "") for h in header]
    fields = {name: h for name, h in zip(names, header, strict=True) if name}
    try:
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise InvalidNetbox(
                    f"{len(row)} cells, the header has {len(header)}", field=f"{origin} line {line}"
                )
            obj = dict(zip(header, row, strict=True))
            ref = f"{origin} line {line}:"
            if kind == "tenants":
                name, slug = tenant_from(
                    {"name": obj.get(fields.get("name", "")), "slug": obj.get(fields.get("slug", ""))},
                    ref=ref,
                )
                estate.tenants[name] = slug
            elif kind == "vrfs":
                vrf = vrf_from(obj, ref=ref, fields=fields)
                estate.vrfs[vrf.name] = vrf
            else:
                estate.add(
                    prefix_from(
                        obj,
                        ref=ref,
                        kind=AGGREGATE if kind == "aggregates" else "prefix",
                        tenants=estate.tenants,
                        fields=fields,
                    )
                )
    except csv.Error as exc:
        raise InvalidNetbox(f"not CSV: {exc}", field=origin) from None
    return estate


_CSV_ORDER = {"tenants": 0, "vrfs": 1, "aggregates": 2, "prefixes": 3}


def estate_from_csv(
    exports: Iterable[tuple[str, CsvLines]], *, source: str = "csv", estate: Estate | None = None
) -> Estate:
    """Several CSV exports ``(origin, text or lines)`` as an estate (added to ``estate``): tenants and VRFs first.

    Each export's header is read first (for its kind), then the exports in order
    of kind, each as a stream: open files are never read whole.
    """
    kinds = []
    for origin, lines in exports:
        reader, header = _reader(lines, origin)
        kinds.append((_CSV_ORDER[csv_kind(header)], origin, reader, header))
    target = estate if estate is not None else Estate(source=source)
    try:
        for _, origin, reader, header in sorted(kinds, key=lambda k: k[0]):
            _read_rows(reader, header, origin=origin, kind=None, estate=target)
    except BaseException:
        if estate is None:
            target.close()
        raise
    return target
