"""``POST /api/v1/netbox/import/``: import a NetBox estate (admins only), as the command does.

The body is one of (JSON):

* ``{"url": "https://netbox…", "token": "…"}``: read NetBox's REST API (the URL
  must pass ``PROVIDER_ENDPOINT_ALLOWED_HOSTS``);
* NetBox API objects: ``{"prefixes": [...], "aggregates": [...], "vrfs": [...],
  "tenants": [...]}`` (each endpoint's ``results``), and/or CSV exports
  ``{"csv": {"prefixes.csv": "<text>", …}}`` (the kind is read from each header);

or one CSV export as the raw body (``Content-Type: text/csv``). ``?dry_run=true``
reports what would be created and every conflict. 200: the report; 409: conflicts
(every one in ``errors`` and the report in ``report``), nothing written; 400: bad
input naming the field (``prefixes[3].prefix``, ``prefixes.csv line 4: Status``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from allocations.errors import ImportConflict
from ipam_portal.api.base import ApiViewSet, request_actor
from ipam_portal.api.errors import error_body
from ipam_portal.api.parsers import StrictJSONParser, read_text_body
from ipam_portal.api.serializers import StrictSerializer

from .records import Estate, estate_from_csv, estate_from_objects
from .services import NetboxReport, netbox_import
from .source import fetch_estate


class CSVTextParser(BaseParser):
    """One NetBox CSV export as the raw body: ``Content-Type: text/csv``."""

    media_type = "text/csv"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return {"csv": {"body": read_text_body(stream, what="the CSV export", encoding="utf-8-sig")}}


class NetboxImportSerializer(StrictSerializer):
    url = serializers.CharField(required=False, help_text="NetBox's base URL: read its REST API")
    token = serializers.CharField(required=False, write_only=True, help_text="NetBox API token (with url)")
    prefixes = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="/api/ipam/prefixes/ results"
    )
    aggregates = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="/api/ipam/aggregates/ results"
    )
    vrfs = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="/api/ipam/vrfs/ results"
    )
    tenants = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="/api/tenancy/tenants/ results"
    )
    csv = serializers.DictField(
        child=serializers.CharField(trim_whitespace=False, allow_blank=True),
        required=False,
        help_text="CSV exports by file name (prefixes, aggregates, VRFs, tenants; kind read from the header)",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        data = [k for k in ("prefixes", "aggregates", "vrfs", "tenants", "csv") if k in attrs]
        if "url" in attrs and data:
            raise serializers.ValidationError({"url": ["give url (and token) or NetBox data, not both"]})
        if "url" not in attrs and not data:
            raise serializers.ValidationError(
                {"prefixes": ["give url and token, NetBox API objects (prefixes, aggregates, …) or csv"]}
            )
        if "url" in attrs and not attrs.get("token"):
            raise serializers.ValidationError({"token": ["NetBox's REST API needs a token"]})
        if "token" in attrs and "url" not in attrs:
            raise serializers.ValidationError({"token": ["a token goes with url"]})
        return attrs


class ImportQuerySerializer(StrictSerializer):
    strict_types = False
    dry_run = serializers.BooleanField(required=False, default=False)
    skip_deprecated = serializers.BooleanField(required=False, default=False)


def _estate(body: dict[str, Any]) -> Estate:
    if "url" in body:
        return fetch_estate(body["url"], body["token"])
    estate = estate_from_objects(
        prefixes=body.get("prefixes", ()),
        aggregates=body.get("aggregates", ()),
        vrfs=body.get("vrfs", ()),
        tenants=body.get("tenants", ()),
        source="json" if "csv" not in body else "json+csv",
    )
    if body.get("csv"):  # into the same estate: CSV rows name tenants by name, JSON tenants count too
        try:
            estate_from_csv(sorted(body["csv"].items()), estate=estate)
        except BaseException:
            estate.close()
            raise
    return estate


def _conflict_response(report: NetboxReport) -> Response:
    errors: dict[str, list[str]] = {}
    for conflict in report.conflicts:
        errors.setdefault(conflict.field, []).append(conflict.message)
    refusal = report.refusal()
    body = error_body(refusal.message, ImportConflict.code, errors)
    body["report"] = report.as_dict()
    return Response(body, status=ImportConflict.status)


_REPORT = {"type": "object", "description": "The import report: pools with actions and counts, conflicts"}


class NetboxViewSet(ApiViewSet):
    """``/netbox/``: import a NetBox estate (prefixes, aggregates, VRFs, tenants)."""

    write_scope = "admin"
    parser_classes = [StrictJSONParser, CSVTextParser]

    @extend_schema(
        operation_id="netbox_import",
        parameters=[
            OpenApiParameter("dry_run", bool, description="Report what would be done and every conflict"),
            OpenApiParameter("skip_deprecated", bool, description="Leave deprecated prefixes out"),
        ],
        request={"application/json": NetboxImportSerializer, "text/csv": OpenApiTypes.STR},
        responses={
            200: OpenApiResponse(_REPORT, description="Imported (or, with dry_run, what would be)"),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Bad input: the field and the reason"),
            409: OpenApiResponse(
                OpenApiTypes.OBJECT, description="Conflicts: every one named in errors, the report in report"
            ),
            502: OpenApiResponse(OpenApiTypes.OBJECT, description="NetBox did not answer as documented"),
        },
        examples=[
            OpenApiExample(
                "an aggregate and a container",
                request_only=True,
                value={
                    "aggregates": [{"id": 1, "prefix": "2001:db8::/32", "rir": {"name": "RFC 3849"}}],
                    "prefixes": [
                        {"id": 7, "prefix": "2001:db8:100::/40", "status": {"value": "container"}},
                        {"id": 8, "prefix": "2001:db8:100::/48", "status": {"value": "active"}},
                    ],
                },
            )
        ],
    )
    @action(detail=False, methods=["post"], url_path="import")
    def import_estate(self, request: Request) -> Response:
        """Import a NetBox estate (all or nothing); 409 names every conflict."""
        query = ImportQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        body = NetboxImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with _estate(dict(body.validated_data)) as estate:
            try:
                report = netbox_import(
                    estate=estate,
                    actor=request_actor(request),
                    dry_run=query.validated_data["dry_run"],
                    skip_deprecated=query.validated_data["skip_deprecated"],
                )
            except ImportConflict as exc:
                return _conflict_response(exc.report)  # type: ignore[arg-type]
        if not report.ok:
            return _conflict_response(report)
        return Response(report.as_dict())
