"""Content-Security-Policy, offline API docs and a spreadsheet-safe CSV export (issue 14).

Scripts come only from our static files: no template holds inline code or an
``on…=`` handler, and every UI page sends a policy that forbids inline scripts.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any, cast

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from audit.services import Actor, audit_record

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", re.IGNORECASE)
HANDLER_ATTRIBUTE = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)


def _templates() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


@pytest.mark.parametrize("path", _templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_has_inline_script_or_handler(path: Path) -> None:
    text = path.read_text()
    assert not INLINE_SCRIPT.search(text), f"inline <script> with code in {path}"
    assert not HANDLER_ATTRIBUTE.search(text), f"on…= handler attribute in {path}"


def test_the_checks_catch_what_they_look_for() -> None:
    assert INLINE_SCRIPT.search("<script>alert(1)</script>")
    assert not INLINE_SCRIPT.search('<script src="/static/ipam/copy.js" defer></script>')
    assert HANDLER_ATTRIBUTE.search('<form method="post" onsubmit="return confirm()">')
    assert not HANDLER_ATTRIBUTE.search('<form method="post" data-confirm="Sure?">')


def _policy(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (part.strip() for part in header.split(";")) if d}


@pytest.mark.parametrize(
    "name", ["ui:dashboard", "ui:pool-list", "ui:shoot-list", "audit:event-list", "login", "api-docs"]
)
def test_pages_send_a_strict_policy(ui: dict[str, Client], name: str) -> None:
    response = ui["auditor"].get(reverse(name))
    assert response.status_code == 200
    policy = _policy(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


def test_static_scripts_exist_for_the_pages_that_use_them() -> None:
    static = Path(settings.BASE_DIR) / "ipam_portal" / "static" / "ipam"
    for name in ("job_progress.js", "copy.js", "confirm.js"):
        assert (static / name).is_file(), name


def test_api_docs_use_only_local_assets(ui: dict[str, Client]) -> None:
    """Swagger UI comes from drf-spectacular-sidecar's static files, not a CDN: it works offline."""
    page = ui["anonymous"].get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui" in u for u in urls), urls
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    assert not INLINE_SCRIPT.search(html), "the docs page must not need an inline script"
    script = ui["anonymous"].get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_csv_export_neutralises_formulas_in_every_cell(ui: dict[str, Client]) -> None:
    """A formula after a delimiter or a line break inside a value would start a cell in some importers."""
    audit_record(  # the one writer of audit events (it extends the hash chain)
        actor=Actor("=cmd|calc", "command"),
        action="pool.create",
        object_type="allocations.pool",
        object_id="1",
        object_repr='x,=HYPERLINK("http://evil.example","click")',
        message="first line\n@SUM(A1:A9)\r\n+1;-2\t=3",
        after={"name": "y,=HYPERLINK(1)"},
    )
    response = ui["auditor"].get(reverse("audit:event-export"), {"actor": "=cmd|calc"})
    rows = list(csv.DictReader(io.StringIO(b"".join(cast(Any, response).streaming_content).decode())))
    assert len(rows) == 1
    row = rows[0]
    assert row["actor"] == "'=cmd|calc"
    assert row["object_repr"] == 'x,\'=HYPERLINK("http://evil.example","click")'
    assert row["message"] == "first line\n'@SUM(A1:A9)\r\n'+1;'-2\t'=3"
    assert ",=" not in row["after"] and row["after"].startswith("{")
    for value in row.values():
        for cell in re.split(r"[,;\t\r\n]", value):
            assert cell[:1] not in {"=", "+", "-", "@"}, (value, cell)
