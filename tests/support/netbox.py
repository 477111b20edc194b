"""A loopback NetBox for the import tests: stored API objects served as NetBox's REST API pages.

No logic of ours: ``GET /api/<app>/<model>/?limit=&offset=`` answers NetBox's
documented list page (``count``, ``next``, ``previous``, ``results``; ``next`` an
absolute URL), without ``Authorization: Token <key>`` 403 with NetBox's ``detail``.
Plus builders of NetBox objects in the shapes its serializers give (nested VRF,
tenant and tags, ``status``/``family`` as ``{"value", "label"}``) and of CSV
table exports (verbose column names).
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

STATUS_LABELS = {
    "container": "Container",
    "active": "Active",
    "reserved": "Reserved",
    "deprecated": "Deprecated",
}


def tenant(id: int, name: str, slug: str) -> dict[str, Any]:
    return {
        "id": id,
        "url": f"/api/tenancy/tenants/{id}/",
        "display": name,
        "name": name,
        "slug": slug,
        "group": None,
        "description": "",
        "tags": [],
    }


def vrf(id: int, name: str, rd: str | None = None, enforce_unique: bool = True) -> dict[str, Any]:
    return {
        "id": id,
        "url": f"/api/ipam/vrfs/{id}/",
        "display": name,
        "name": name,
        "rd": rd,
        "tenant": None,
        "enforce_unique": enforce_unique,
        "description": "",
        "tags": [],
    }


def _nested_vrf(v: dict[str, Any] | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {k: v[k] for k in ("id", "url", "display", "name", "rd")} | {"description": ""}


def _nested_tenant(t: dict[str, Any] | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {k: t[k] for k in ("id", "url", "display", "name", "slug")} | {"description": ""}


def _tags(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {
            "id": i + 1,
            "url": f"/api/extras/tags/{i + 1}/",
            "display": n,
            "name": n.title(),
            "slug": n,
            "color": "9e9e9e",
        }
        for i, n in enumerate(names)
    ]


def family(prefix: str) -> dict[str, Any]:
    v = 6 if ":" in prefix else 4
    return {"value": v, "label": f"IPv{v}"}


def aggregate(
    id: int,
    prefix: str,
    *,
    tenant_: dict[str, Any] | None = None,
    description: str = "",
    tags: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "id": id,
        "url": f"/api/ipam/aggregates/{id}/",
        "display": prefix,
        "family": family(prefix),
        "prefix": prefix,
        "rir": {"id": 1, "name": "RFC 3849", "slug": "rfc-3849"},
        "tenant": _nested_tenant(tenant_),
        "date_added": None,
        "description": description,
        "tags": _tags(tags),
        "custom_fields": {},
    }


def prefix(
    id: int,
    cidr: str,
    status: str = "active",
    *,
    vrf_: dict[str, Any] | None = None,
    tenant_: dict[str, Any] | None = None,
    description: str = "",
    tags: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "id": id,
        "url": f"/api/ipam/prefixes/{id}/",
        "display": cidr,
        "family": family(cidr),
        "prefix": cidr,
        "vrf": _nested_vrf(vrf_),
        "scope_type": None,
        "scope_id": None,
        "scope": None,
        "tenant": _nested_tenant(tenant_),
        "vlan": None,
        "status": {"value": status, "label": STATUS_LABELS.get(status, status.title())},
        "role": None,
        "is_pool": False,
        "mark_utilized": False,
        "description": description,
        "comments": "",
        "tags": _tags(tags),
        "custom_fields": {},
        "children": 0,
        "_depth": 0,
    }


def prefixes_csv(objects: list[dict[str, Any]]) -> str:
    """NetBox's prefix table export ("All data"): verbose headers, labels and names."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(
        [
            "ID",
            "Prefix",
            "Status",
            "Children",
            "VRF",
            "Utilization",
            "Tenant",
            "Site",
            "VLAN",
            "Role",
            "Pool",
            "Marked Utilized",
            "Description",
            "Tags",
        ]
    )
    for p in objects:
        w.writerow(
            [
                p["id"],
                p["prefix"],
                p["status"]["label"],
                0,
                (p["vrf"] or {}).get("name", "Global"),
                "0%",
                (p["tenant"] or {}).get("name", ""),
                "",
                "",
                "",
                "False",
                "False",
                p["description"],
                ",".join(t["slug"] for t in p["tags"]),
            ]
        )
    return out.getvalue()


def aggregates_csv(objects: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(
        ["ID", "Aggregate", "RIR", "Tenant", "Prefixes", "Utilization", "Added", "Description", "Tags"]
    )
    for a in objects:
        w.writerow(
            [
                a["id"],
                a["prefix"],
                a["rir"]["name"],
                (a["tenant"] or {}).get("name", ""),
                0,
                "0%",
                "",
                a["description"],
                ",".join(t["slug"] for t in a["tags"]),
            ]
        )
    return out.getvalue()


def vrfs_csv(objects: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["ID", "Name", "RD", "Tenant", "Enforce unique", "Description"])
    for v in objects:
        w.writerow([v["id"], v["name"], v["rd"] or "", "", "✔" if v["enforce_unique"] else "✘", ""])
    return out.getvalue()


def tenants_csv(objects: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["ID", "Name", "Slug", "Group", "Description"])
    for t in objects:
        w.writerow([t["id"], t["name"], t["slug"], "", ""])
    return out.getvalue()


ENDPOINTS = {
    "/api/tenancy/tenants/": "tenants",
    "/api/ipam/vrfs/": "vrfs",
    "/api/ipam/aggregates/": "aggregates",
    "/api/ipam/prefixes/": "prefixes",
}


@contextmanager
def netbox_server(data: dict[str, list[dict[str, Any]]], token: str) -> Iterator[dict[str, Any]]:
    """Serve ``data`` (``tenants``, ``vrfs``, ``aggregates``, ``prefixes``) on 127.0.0.1; yields url and a log."""
    log: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            log.append(self.path)
            parts = urlsplit(self.path)
            if self.headers.get("Authorization") != f"Token {token}":
                self._send(403, {"detail": "Authentication credentials were not provided."})
                return
            name = ENDPOINTS.get(parts.path)
            if name is None:
                self._send(404, {"detail": "Not found."})
                return
            q = parse_qs(parts.query)
            limit, offset = int(q.get("limit", ["50"])[0]), int(q.get("offset", ["0"])[0])
            objects = data.get(name, [])
            base = f"http://{self.headers['Host']}{parts.path}"
            nxt = f"{base}?limit={limit}&offset={offset + limit}" if offset + limit < len(objects) else None
            prev = f"{base}?limit={limit}&offset={max(0, offset - limit)}" if offset else None
            self._send(
                200,
                {
                    "count": len(objects),
                    "next": nxt,
                    "previous": prev,
                    "results": objects[offset : offset + limit],
                },
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "log": log}
    finally:
        server.shutdown()
        server.server_close()
