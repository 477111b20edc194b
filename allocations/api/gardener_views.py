"""REST API of the Gardener round trip: import manifests, export them, report drift.

Thin, like every view: parse, call one service or selector, render. Roles as
everywhere (:class:`~ipam_portal.api.permissions.RolePermission`): only admins
import (seeds and pools are shared data); every role may read exports and drift
reports, as every role may read shoots.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from ipam_portal.api.base import ApiViewSet, request_actor
from ipam_portal.api.errors import error_body
from ipam_portal.api.parsers import StrictJSONParser, read_text_body
from ipam_portal.api.renderers import YAMLRenderer
from ipam_portal.api.serializers import StrictSerializer

from .. import selectors
from ..errors import ImportConflict, InvalidManifest, IpamError
from ..gardener.drift import DRIFT, drift_report, shoot_drift
from ..models import Seed, Shoot
from ..names import parse_shoot_key
from ..selectors import shoot_get
from ..services.gardener_import import ImportReport, documents_from_data, gardener_import, parse_manifests


class ManifestTextParser(BaseParser):
    """A YAML (or JSON) manifest sent as the raw body: ``Content-Type: application/yaml``."""

    media_type = "application/yaml"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return {"manifest": read_text_body(stream, what="the manifest")}


class ImportBodySerializer(StrictSerializer):
    manifest = serializers.CharField(
        trim_whitespace=False, help_text="The manifest as YAML or JSON text (one object, a List, documents)"
    )


class ExportQuerySerializer(StrictSerializer):
    strict_types = False
    shoot = serializers.CharField(required=False, help_text="One shoot: PROJECT/NAME")
    project = serializers.CharField(required=False, help_text="Every live shoot of a Gardener project")
    all = serializers.BooleanField(required=False, default=False, help_text="Every seed and live shoot")
    seeds = serializers.BooleanField(required=False, default=False, help_text="Also the shoots' seeds")
    format = serializers.ChoiceField(choices=["yaml", "json"], required=False)


class DriftQuerySerializer(StrictSerializer):
    strict_types = False
    shoot = serializers.CharField(required=False, help_text="One shoot: PROJECT/NAME")
    project = serializers.CharField(required=False, help_text="Only this Gardener project's shoots")


class ImportQuerySerializer(StrictSerializer):
    strict_types = False
    dry_run = serializers.BooleanField(required=False, default=False)


def _shoot_named(text: str) -> Shoot:
    return shoot_get(*parse_shoot_key(text))


def _conflict_response(report: ImportReport) -> Response:
    errors: dict[str, list[str]] = {}
    for conflict in report.conflicts:
        errors.setdefault(conflict.field, []).append(conflict.message)
    first = report.conflicts[0]
    more = f" (and {len(report.conflicts) - 1} more)" if len(report.conflicts) > 1 else ""
    body = error_body(f"{first.text()}{more}; nothing was imported", ImportConflict.code, errors)
    body["report"] = report.as_dict()
    return Response(body, status=ImportConflict.status)


_REPORT = {"type": "object", "description": "The import report: documents with actions and ranges, conflicts"}
_EXAMPLE_SHOOT = """apiVersion: core.gardener.cloud/v1beta1
kind: Shoot
metadata: {name: os-gep, namespace: garden-dev}
spec:
  seedName: seed-os-eu
  region: eu-de-1
  provider: {type: openstack}
  networking: {ipFamilies: [IPv4, IPv6], nodes: 10.250.0.0/16, pods: 100.96.0.0/11, services: 100.64.0.0/13}
status:
  networking:
    nodes: ["2001:db8:0:10::/64", 10.250.0.0/16]
    pods: ["2001:db8:0:10:4000::/66", 100.96.0.0/11]
    services: ["2001:db8:0:10:8000::/108", 100.64.0.0/13]
"""


class GardenerViewSet(ApiViewSet):
    """``/gardener/``: import Gardener manifests, export shoots as Gardener YAML, drift reports."""

    write_scope = "admin"
    parser_classes = [StrictJSONParser, ManifestTextParser]

    @extend_schema(
        operation_id="gardener_import",
        parameters=[
            OpenApiParameter(
                "dry_run", bool, description="Report what would be done and every conflict; write nothing"
            )
        ],
        request={"application/json": ImportBodySerializer, "application/yaml": OpenApiTypes.STR},
        responses={
            200: OpenApiResponse(_REPORT, description="Imported (or, with dry_run, what would be)"),
            409: OpenApiResponse(
                OpenApiTypes.OBJECT, description="Conflicts: every one named in errors, the report in report"
            ),
        },
        examples=[
            OpenApiExample("a brownfield shoot", value={"manifest": _EXAMPLE_SHOOT}, request_only=True)
        ],
    )
    @action(detail=False, methods=["post"], url_path="import")
    def import_manifests(self, request: Request) -> Response:
        """Import seeds and existing shoots (all or nothing); 409 names every conflict."""
        query = ImportQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        data = request.data
        if isinstance(data, dict) and "manifest" in data:
            body = ImportBodySerializer(data=data)
            body.is_valid(raise_exception=True)
            documents = parse_manifests(body.validated_data["manifest"], origin="manifest")
        elif isinstance(data, dict) and data:
            documents = documents_from_data(data, origin="manifest")
        else:
            raise InvalidManifest(
                'send a Gardener object, a List, or {"manifest": "<yaml>"}', field="manifest"
            )
        try:
            report = gardener_import(
                documents=documents, actor=request_actor(request), dry_run=query.validated_data["dry_run"]
            )
        except ImportConflict as exc:
            return _conflict_response(exc.report)  # type: ignore[arg-type]
        if not report.ok:
            return _conflict_response(report)
        return Response(report.as_dict(), status=status.HTTP_200_OK)

    @extend_schema(
        operation_id="gardener_export",
        parameters=[ExportQuerySerializer],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="A Gardener Shoot, or a List of Seeds and Shoots: YAML, or JSON with "
                "Accept: application/json",
            )
        },
    )
    @action(detail=False, methods=["get"], renderer_classes=[YAMLRenderer, JSONRenderer])
    def export(self, request: Request) -> Response:
        """Shoots as Gardener YAML: ``?shoot=PROJECT/NAME``, ``?project=P`` or ``?all=true``."""
        query = ExportQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        q = query.validated_data
        if sum([bool(q.get("shoot")), bool(q.get("project")), bool(q["all"])]) != 1:
            raise IpamError("give exactly one of shoot, project or all=true", field="shoot")
        if q.get("shoot"):
            shoots = list(selectors.gardener_shoots(shoot=_shoot_named(q["shoot"])))
        else:
            shoots = list(selectors.gardener_shoots(project=q.get("project")))
        seeds: list[Seed] = []
        if q["all"]:
            seeds = list(Seed.objects.order_by("name"))
        elif q["seeds"]:
            seeds = list(Seed.objects.filter(pk__in={s.seed_id for s in shoots}).order_by("name"))
        single = bool(q.get("shoot")) and not seeds
        return Response(selectors.gardener_export(shoots=shoots, seeds=seeds, as_list=not single))

    @extend_schema(
        operation_id="gardener_drift",
        parameters=[DriftQuerySerializer],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Per shoot: state and differences")},
    )
    @action(detail=False, methods=["get"])
    def drift(self, request: Request) -> Response:
        """Gardener's reported status against the portal's ranges, per shoot (all, a project, one)."""
        query = DriftQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        q = query.validated_data
        if q.get("shoot"):
            shoots = list(selectors.gardener_shoots(shoot=_shoot_named(q["shoot"])))
        else:
            shoots = list(selectors.gardener_shoots(project=q.get("project")))
        report = drift_report(shoots)
        return Response(
            {
                "drift": any(item.state == DRIFT for item in report),
                "shoots": [item.as_dict() for item in report],
            }
        )


class ShootDriftViewSet(ApiViewSet):
    """``/shoots/{id}/drift/``: one shoot's drift report."""

    queryset = Shoot.objects.select_related("seed")

    @extend_schema(
        operation_id="shoots_drift",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="state and differences")},
    )
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        shoot = get_object_or_404(Shoot.objects.select_related("seed"), pk=pk)
        return Response(shoot_drift(shoot).as_dict())
