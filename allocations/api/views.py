"""REST API views of the IPAM domain. Thin: parse, call one service or selector, render."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import roles
from ipam_portal.api.base import ApiViewSet, body_project, request_actor, validated_query
from ipam_portal.api.base import validated as _validated
from ipam_portal.api.errors import fields_renamed
from ipam_portal.api.etag import ETagMixin, etag_of
from ipam_portal.api.renderers import YAMLRenderer

from .. import history, prefixes, selectors, services
from ..errors import Forbidden
from ..models import Allocation, Node, Pool, Seed, Shoot
from ..pool_rules import PoolRules, requested_length
from . import history_views
from . import serializers as s
from .filters import AllocationFilterSet, PoolFilterSet, ShootFilterSet


class PoolViewSet(ETagMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Pools: CRUD (admins), free blocks, next-free preview, allocation, utilisation."""

    queryset = Pool.objects.select_related("parent").order_by("family", "first", "prefix_length")
    serializer_class = s.PoolSerializer
    filterset_class = PoolFilterSet
    ordering_fields = ["name", "first", "prefix_length", "created_at"]

    def get_queryset(self) -> QuerySet[Pool]:
        if getattr(self, "action", None) == "allocations":
            # Allocating needs the pool row only (the answer names no parent): no join to build or read.
            return Pool.objects.all()
        return super().get_queryset()

    def get_write_project(self, request: Request) -> str | None:
        return body_project(request)

    @property
    def write_scope(self) -> str:  # type: ignore[override]
        return "project" if getattr(self, "action", None) == "allocations" else "admin"

    @extend_schema(
        parameters=[
            OpenApiParameter("at", OpenApiTypes.DATETIME, description="The pool as it was then"),
            OpenApiParameter("limit", int, description="With at: at most this many allocations (100)"),
        ],
        responses={200: s.PoolSerializer},
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The pool; with ``?at=`` also its utilisation and allocations at that time."""
        if "at" not in request.query_params:
            return super().retrieve(request, *args, **kwargs)
        query = validated_query(s.PoolAtQuerySerializer, request)
        pool = self.get_object()
        then = history.pool_at(pool, query["at"], limit=query["limit"])
        return Response(
            {
                **s.PoolSerializer(pool).data,
                "at": query["at"].isoformat(),
                "existed": then.existed,
                "utilisation": then.as_dict(),
                "allocations": history_views.allocations_at_data(then.allocations, query["at"]),
                "allocations_truncated": then.truncated,
            }
        )

    @extend_schema(request=s.PoolCreateSerializer, responses={201: s.PoolSerializer})
    def create(self, request: Request) -> Response:
        data = _validated(s.PoolCreateSerializer, request.data)
        rules, rest = PoolRules.split(data)
        pool = services.pool_create(actor=request_actor(request), rules=rules, **rest)
        return Response(s.PoolSerializer(pool).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.PoolUpdateSerializer, responses={200: s.PoolSerializer})
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change a pool's rules; send ``If-Match`` with the ETag you read to avoid lost updates."""
        pool = self.get_object()
        self.check_if_match(request, pool)
        data = _validated(s.PoolUpdateSerializer, request.data)
        pool = services.pool_update(pool=pool, actor=request_actor(request), **data)
        body = s.PoolSerializer(pool).data
        return Response(body, headers={"ETag": etag_of(body)})

    @extend_schema(request=s.PoolUpdateSerializer, responses={200: s.PoolSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, **kwargs)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.pool_delete(pool=self.get_object(), actor=request_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[
            OpenApiParameter("prefix_length", int, description="Free aligned blocks of this length"),
            OpenApiParameter("limit", int, description="At most this many (default 100)"),
        ],
        responses={200: {"type": "array", "items": {"type": "string"}}},
    )
    @action(detail=True, methods=["get"], url_path="free-blocks")
    def free_blocks(self, request: Request, pk: str | None = None) -> Response:
        query = _validated(s.PrefixLengthQuerySerializer, request.query_params.dict())
        blocks = selectors.pool_free_blocks(
            self.get_object(), prefix_length=query.get("prefix_length"), limit=query["limit"]
        )
        return Response([str(b) for b in blocks])

    @extend_schema(
        parameters=[OpenApiParameter("prefix_length", int, required=False)],
        responses={
            200: {
                "type": "object",
                "properties": {
                    "cidr": {"type": "string", "nullable": True},
                    "prefix_length": {"type": "integer"},
                },
            }
        },
    )
    @action(detail=True, methods=["get"])
    def next(self, request: Request, pk: str | None = None) -> Response:
        """The block the next allocation of ``prefix_length`` would get; nothing is taken."""
        pool = self.get_object()
        query = _validated(s.PrefixLengthQuerySerializer, request.query_params.dict())
        length = requested_length(pool, query.get("prefix_length"))  # the allocator's own default
        found = selectors.pool_next_free(pool, length)
        return Response({"cidr": str(found) if found else None, "prefix_length": length})

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def utilisation(self, request: Request, pk: str | None = None) -> Response:
        return Response(selectors.pool_utilisation(self.get_object()).as_dict())

    @extend_schema(
        request=s.AllocationCreateSerializer,
        responses={201: s.AllocationSerializer},
        examples=[
            OpenApiExample(
                "next free /56", value={"prefix_length": 56, "project": "garden-dev"}, request_only=True
            ),
            OpenApiExample(
                "a given prefix", value={"cidr": "2001:db8:0:ff00::/56", "label": "lab"}, request_only=True
            ),
            OpenApiExample(
                "a hold for a shoot's growth",
                value={"cidr": "2001:db8:0:1::/64", "hold_until": "2026-12-31T00:00:00Z", "label": "growth"},
                request_only=True,
            ),
            OpenApiExample(
                "exhausted",
                value={
                    "detail": "pool p (2001:db8::/48) has no free /48",
                    "code": "pool_exhausted",
                    "errors": {"prefix_length": ["pool p (2001:db8::/48) has no free /48"]},
                },
                response_only=True,
                status_codes=["409"],
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def allocations(self, request: Request, pk: str | None = None) -> Response:
        """Allocate ``{"prefix_length": N}`` (next free) or ``{"cidr": ...}`` from the pool.

        Operators allocate only for a project of theirs that the pool is delegated to
        (its ``delegated_projects``); a shoot's own pools take no manual allocation.
        """
        pool = self.get_object()
        data = _validated(s.AllocationCreateSerializer, request.data)
        refusal = roles.manual_allocation_refusal(
            request.user, delegated_projects=pool.delegated_projects, project=data["project"]
        )
        if refusal:
            raise Forbidden(refusal, field="project")
        allocation = services.pool_allocate(pool=pool, actor=request_actor(request), **data)
        return Response(s.AllocationSerializer(allocation).data, status=status.HTTP_201_CREATED)


class AllocationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Allocations: list/detail; release (``DELETE`` or ``POST .../release/``) into quarantine."""

    queryset = Allocation.objects.select_related("shoot").order_by("family", "first", "prefix_length", "id")
    serializer_class = s.AllocationSerializer
    filterset_class = AllocationFilterSet
    ordering_fields = ["first", "prefix_length", "created_at", "state"]
    write_scope = "project"

    def _release(self, request: Request) -> Allocation:
        data = _validated(s.ReleaseSerializer, request.data)
        if "quarantine_seconds" in data and not roles.may_choose_quarantine(request.user):
            raise Forbidden(
                "only admins choose the quarantine: leave quarantine_seconds out for the default",
                field="quarantine_seconds",
            )
        return services.allocation_release(allocation=self.get_object(), actor=request_actor(request), **data)

    @extend_schema(request=s.ReleaseSerializer, responses={200: s.AllocationSerializer})
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str | None = None) -> Response:
        """Release into quarantine and answer the allocation's new state."""
        return Response(s.AllocationSerializer(self._release(request)).data)

    @extend_schema(request=s.ReleaseSerializer, responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Release into quarantine; 204 like every DELETE (``POST .../release/`` answers the state)."""
        self._release(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    parameters=[OpenApiParameter("q", str, required=True, description="An address or a prefix")],
    responses={200: OpenApiTypes.OBJECT},
)
class LookupViewSet(ApiViewSet):
    """Who owns this IP? Every allocation and pool that contains it, most specific first."""

    @extend_schema(parameters=[s.LookupQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    def list(self, request: Request) -> Response:
        """Without ``at``, today's live allocations; with ``at``, what held it then and why."""
        query = validated_query(s.LookupQuerySerializer, request)
        net = prefixes.parse_address_or_prefix(query["q"], field="q")
        if "at" in query:
            return Response(history_views.lookup_at(net, query["at"]))
        allocations = selectors.allocations_containing(net)
        return Response(
            {
                "query": str(net),
                "allocations": s.AllocationSerializer(allocations, many=True).data,
                "pools": s.PoolSerializer(selectors.pools_containing(net), many=True).data,
            }
        )


class SeedViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Seeds with their networks (immutable once created, as in Gardener)."""

    queryset = Seed.objects.order_by("name")
    serializer_class = s.SeedSerializer
    filterset_fields = ["provider", "region", "name"]
    ordering_fields = ["name", "created_at"]

    @extend_schema(request=s.SeedCreateSerializer, responses={201: s.SeedSerializer})
    def create(self, request: Request) -> Response:
        data = _validated(s.SeedCreateSerializer, request.data)
        with fields_renamed(services.SEED_ERROR_FIELDS):
            seed = services.seed_create(actor=request_actor(request), **data)
        return Response(s.SeedSerializer(seed).data, status=status.HTTP_201_CREATED)


class ShootViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Shoots: ``POST`` allocates every range (201; the same request again 200)."""

    queryset = Shoot.objects.select_related("seed").order_by("project", "name", "id")
    serializer_class = s.ShootSerializer
    filterset_class = ShootFilterSet
    ordering_fields = ["project", "name", "created_at"]
    write_scope = "project"

    def get_write_project(self, request: Request) -> str | None:
        if self.action == "create":
            return body_project(request) or ""
        return None  # bulk checks each entry's project; detail actions check the shoot's

    @extend_schema(
        request=s.ShootCreateSerializer,
        responses={201: s.ShootSerializer, 200: s.ShootSerializer},
        examples=[
            OpenApiExample(
                "dual-stack OpenStack shoot",
                value={
                    "project": "garden-dev",
                    "name": "my-shoot",
                    "seed": "seed-eu-de-1",
                    "provider": "openstack",
                    "region": "eu-de-1",
                    "ip_families": ["IPv4", "IPv6"],
                },
                request_only=True,
            ),
            OpenApiExample(
                "AWS, three zones",
                value={
                    "project": "garden-dev",
                    "name": "aws-shoot",
                    "seed": "seed-eu-de-1",
                    "provider": "aws",
                    "region": "eu-central-1",
                    "zones": 3,
                },
                request_only=True,
            ),
        ],
    )
    def create(self, request: Request) -> Response:
        data = _validated(s.ShootCreateSerializer, request.data)
        shoot, created = services.shoot_allocate(actor=request_actor(request), **data)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(s.ShootSerializer(shoot).data, status=code)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Release every range of the shoot (into quarantine); 204 like every DELETE."""
        services.shoot_release(shoot=self.get_object(), actor=request_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.IpFamiliesSerializer, responses={200: s.ShootSerializer})
    @action(detail=True, methods=["post"], url_path="ip-families")
    def ip_families(self, request: Request, pk: str | None = None) -> Response:
        """Dual-stack migration ``[IPv4]`` → ``[IPv4, IPv6]`` or rollback; other changes are refused."""
        data = _validated(s.IpFamiliesSerializer, request.data)
        shoot = services.shoot_change_ip_families(
            shoot=self.get_object(), ip_families=data["ip_families"], actor=request_actor(request)
        )
        return Response(s.ShootSerializer(shoot).data)

    @extend_schema(
        request=s.ShootBulkSerializer, responses={201: s.ShootSerializer(many=True)}, filters=False
    )
    @action(detail=False, methods=["post"], pagination_class=None)  # a body in, a list out: no page
    def bulk(self, request: Request) -> Response:
        """Allocate many shoots at once, all or nothing; a refused entry names its index."""
        data = _validated(s.ShootBulkSerializer, request.data)
        requests = []
        for index, item in enumerate(data["shoots"]):
            entry = s.ShootCreateSerializer(data=item)
            if not entry.is_valid():
                raise ValidationError({f"shoots[{index}].{k}": v for k, v in entry.errors.items()})
            requests.append(dict(entry.validated_data))
        for item in requests:
            if refusal := roles.project_write_refusal(request.user, item["project"]):
                raise PermissionDenied(refusal)
        done = services.shoots_allocate_bulk(requests=requests, actor=request_actor(request))
        return Response(
            s.ShootSerializer([shoot for shoot, _ in done], many=True).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT, description="YAML, or JSON with Accept: application/json"
            )
        }
    )
    @action(detail=True, methods=["get"], renderer_classes=[YAMLRenderer, JSONRenderer])
    def gardener(self, request: Request, pk: str | None = None) -> Response:
        """The shoot's ``spec.networking`` and provider ``InfrastructureConfig`` (YAML or JSON)."""
        return Response(selectors.shoot_gardener_manifest(self.get_object()))


class NodeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """``shoots/{shoot}/nodes/``: register a node (its pod range comes back), remove it."""

    queryset = Node.objects.none()  # for the schema; requests use get_queryset()
    serializer_class = s.NodeSerializer
    write_scope = "project"

    def shoot(self) -> Shoot:
        from django.shortcuts import get_object_or_404

        return get_object_or_404(Shoot, pk=self.kwargs["shoot_pk"])

    def get_write_project(self, request: Request) -> str | None:
        return self.shoot().project

    def get_queryset(self) -> QuerySet[Node]:
        if getattr(self, "swagger_fake_view", False):
            return Node.objects.none()
        return Node.objects.filter(shoot=self.shoot()).select_related("pod_allocation", "shoot")

    @extend_schema(
        request=s.NodeCreateSerializer,
        responses={201: s.NodeSerializer, 200: s.NodeSerializer},
    )
    def create(self, request: Request, shoot_pk: str | None = None) -> Response:
        data = _validated(s.NodeCreateSerializer, request.data)
        node, created = services.node_register(shoot=self.shoot(), actor=request_actor(request), **data)
        return Response(
            s.NodeSerializer(node).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, shoot_pk: str | None = None, pk: str | None = None) -> Response:
        services.node_remove(node=self.get_object(), actor=request_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
