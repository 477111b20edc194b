"""Serializers: input parsing and output shapes only. Writes happen in the services."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, TypedDict, cast

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject

from ipam_portal.api.serializers import StrictSerializer

from .. import history, layouts, pool_rules
from ..choices import (
    FitPolicy,
    OwnerType,
    PoolKind,
    Provider,
    Purpose,
    Role,
    Uniqueness,
)
from ..errors import IpamError
from ..models import Allocation, Node, Pool, Seed, Shoot
from ..pool_rules import DEFAULTS


class PrebuiltOutputSerializer(serializers.ModelSerializer):
    """A read-only output serializer whose fields are built once per class, not per response.

    A ``ModelSerializer`` introspects its model and builds every field each time it
    is instantiated — most of what rendering one object costs. Output fields hold no
    per-response state, so they are built once (bound to a template instance) and
    :meth:`to_representation` reuses them, with the same per-field steps as DRF's;
    ``SerializerMethodField`` methods run on the serializer at hand. Only for fields
    that need no ``context`` (no hyperlinks, no request). The declared fields stay the
    schema's source.
    """

    _prebuilt_fields: ClassVar[list[tuple[serializers.Field, str | None]]]  # set by _output_fields

    @classmethod
    def _output_fields(cls) -> list[tuple[serializers.Field, str | None]]:
        """The readable fields of the class, each with its method name if it is a method field."""
        built = cls.__dict__.get("_prebuilt_fields")
        if built is None:
            built = [
                (field, field.method_name if isinstance(field, serializers.SerializerMethodField) else None)
                for field in cls()._readable_fields
            ]
            cls._prebuilt_fields = built  # racing threads build equal lists; either may win
        return built

    def to_representation(self, instance: Any) -> dict[str, Any]:
        ret: dict[str, Any] = {}
        for field, method in self._output_fields():
            if method is not None:
                ret[cast(str, field.field_name)] = getattr(self, method)(instance)
                continue
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            # As DRF: None stays None; a pk-only related value is None when its pk is.
            check_for_none = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            ret[cast(str, field.field_name)] = (
                None if check_for_none is None else field.to_representation(attribute)
            )
        return ret


class _Bounds(TypedDict):
    min_value: int
    max_value: int


PREFIX_LENGTH: _Bounds = {"min_value": 0, "max_value": 128}


class PoolSerializer(PrebuiltOutputSerializer):
    family = serializers.IntegerField(read_only=True)
    prefix_length = serializers.IntegerField(read_only=True)
    parent: serializers.PrimaryKeyRelatedField[Pool] = serializers.PrimaryKeyRelatedField(  # type: ignore[assignment]  # a declared field, not Field.parent (stubs)
        read_only=True, allow_null=True
    )
    parent_allocation: serializers.PrimaryKeyRelatedField[Allocation] = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True
    )
    provider = serializers.ChoiceField(choices=Provider.choices, allow_blank=True, read_only=True)
    delegated_projects = serializers.ListField(child=serializers.CharField(), read_only=True)
    utilisation_url = serializers.SerializerMethodField()

    class Meta:
        model = Pool
        fields = [
            "id",
            "name",
            "cidr",
            "family",
            "prefix_length",
            "kind",
            "uniqueness",
            "purpose",
            "parent",
            "parent_allocation",
            "default_prefix_length",
            "min_prefix_length",
            "max_prefix_length",
            "fit_policy",
            "project_quota",
            "delegated_projects",
            "provider",
            "region",
            "description",
            "tags",
            "sticky",
            "created_at",
            "updated_at",
            "retired_at",
            "utilisation_url",
        ]
        read_only_fields = fields

    def get_utilisation_url(self, obj: Pool) -> str:
        return f"/api/v1/pools/{obj.pk}/utilisation/"


def _pool_rules_fields(*, create: bool) -> dict[str, serializers.Field]:
    """The API fields of :class:`PoolRules`, one per rule.

    On create a rule left out gets a new pool's default; on update it stays as it
    is, and the rules fixed at creation are not offered.
    """

    def given(name: str) -> dict[str, Any]:
        return {"default": getattr(DEFAULTS, name)} if create else {"required": False}

    fields: dict[str, serializers.Field] = {
        "kind": serializers.ChoiceField(choices=PoolKind.choices, **given("kind")),
        "uniqueness": serializers.ChoiceField(choices=Uniqueness.choices, **given("uniqueness")),
        "purpose": serializers.ChoiceField(choices=Purpose.choices, **given("purpose")),
        "default_prefix_length": serializers.IntegerField(required=False, allow_null=True, **PREFIX_LENGTH),
        "min_prefix_length": serializers.IntegerField(required=False, allow_null=True, **PREFIX_LENGTH),
        "max_prefix_length": serializers.IntegerField(required=False, allow_null=True, **PREFIX_LENGTH),
        "fit_policy": serializers.ChoiceField(choices=FitPolicy.choices, **given("fit_policy")),
        "project_quota": serializers.IntegerField(
            required=False, allow_null=True, min_value=0, max_value=2**63 - 1
        ),
        "delegated_projects": serializers.ListField(
            child=serializers.CharField(max_length=pool_rules.PROJECT_NAME_MAX),
            required=False,
            max_length=1000,
            help_text="Gardener projects whose operators may allocate from the pool by hand (empty: admins only)",
        ),
        "provider": serializers.ChoiceField(choices=Provider.choices, allow_blank=True, **given("provider")),
        "region": serializers.CharField(max_length=64, allow_blank=True, **given("region")),
        "description": serializers.CharField(allow_blank=True, max_length=10000, **given("description")),
        "tags": serializers.ListField(
            child=serializers.CharField(max_length=100), required=False, max_length=100
        ),
        "sticky": serializers.BooleanField(
            required=False,
            allow_null=True,
            help_text="A recreated shoot gets its old ranges back (null: on for shoots pools)",
        ),
    }
    assert tuple(fields) == pool_rules.NAMES, "every pool rule has one API field, in the rules' order"
    return {name: field for name, field in fields.items() if create or name in pool_rules.UPDATABLE}


class PoolCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    cidr = serializers.CharField(max_length=100, required=False, help_text="Required unless parent is given")
    parent = serializers.PrimaryKeyRelatedField(queryset=Pool.objects.all(), required=False, allow_null=True)  # type: ignore[assignment]  # a declared field, not Field.parent (stubs)
    prefix_length = serializers.IntegerField(
        required=False,
        help_text="With parent and no cidr: carve the next free prefix of this length",
        **PREFIX_LENGTH,
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        return {**super().get_fields(), **_pool_rules_fields(create=True)}


class PoolUpdateSerializer(StrictSerializer):
    """The rules of a pool; its prefix, name and parent never change."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {**super().get_fields(), **_pool_rules_fields(create=False)}


class AllocationSerializer(PrebuiltOutputSerializer):
    shoot_name = serializers.SerializerMethodField()
    node = serializers.SerializerMethodField()

    class Meta:
        model = Allocation
        fields = [
            "id",
            "cidr",
            "family",
            "prefix_length",
            "pool",
            "scope",
            "owner_type",
            "shoot",
            "shoot_name",
            "seed",
            "node",
            "project",
            "role",
            "label",
            "state",
            "expires_at",
            "description",
            "created_at",
            "created_by",
            "released_at",
            "released_by",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_shoot_name(self, obj: Allocation) -> str | None:
        return str(obj.shoot) if obj.shoot_id else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_node(self, obj: Allocation) -> str | None:
        return obj.label if obj.owner_type == OwnerType.NODE else None


class AllocationCreateSerializer(StrictSerializer):
    prefix_length = serializers.IntegerField(required=False, **PREFIX_LENGTH)
    cidr = serializers.CharField(required=False, max_length=100)
    owner_type = serializers.ChoiceField(
        choices=[OwnerType.MANUAL, OwnerType.RESERVATION], default=OwnerType.MANUAL
    )
    role = serializers.ChoiceField(choices=Role.choices, default=Role.BLOCK)
    project = serializers.CharField(required=False, allow_blank=True, default="", max_length=63)
    label = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)  # type: ignore[assignment]  # a declared field, not Field.label (stubs)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=10000)
    hold_until = serializers.DateTimeField(
        required=False, help_text="Makes it a hold that lapses at this time"
    )


class ReleaseSerializer(StrictSerializer):
    quarantine_seconds = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="Admins only; default IPAM_QUARANTINE_SECONDS, at most IPAM_QUARANTINE_MAX_SECONDS",
    )


class PrefixLengthQuerySerializer(StrictSerializer):
    strict_types = False
    prefix_length = serializers.IntegerField(required=False, **PREFIX_LENGTH)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)


@extend_schema_field(OpenApiTypes.DATETIME)
class PointInTimeField(serializers.Field):
    """An instant, as :func:`allocations.history.parse_instant` reads it (the commands' rule too)."""

    def to_internal_value(self, data: Any) -> dt.datetime:
        if not isinstance(data, str):
            raise serializers.ValidationError("expected an ISO 8601 instant as text")
        try:
            return history.parse_instant(data)
        except IpamError as exc:
            raise serializers.ValidationError(exc.message) from None

    def to_representation(self, value: dt.datetime) -> str:
        return value.isoformat()


AT_HELP = "ISO 8601 instant (e.g. 2026-03-01T12:00:00Z) or a date (its midnight, UTC)"


class LookupQuerySerializer(StrictSerializer):
    strict_types = False
    q = serializers.CharField(max_length=100, help_text="An address or a prefix")
    at = PointInTimeField(required=False, help_text=f"What held it then: {AT_HELP}")


class PrefixHistoryQuerySerializer(StrictSerializer):
    """``q``, and the optional bounds ``from`` (a Python keyword: declared in get_fields) and ``until``."""

    strict_types = False
    q = serializers.CharField(max_length=100, help_text="A prefix or an address")
    until = PointInTimeField(required=False, help_text=f"Intervals that began before this: {AT_HELP}")
    limit = serializers.IntegerField(
        required=False, default=1000, min_value=1, max_value=10000, help_text="At most this many allocations"
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = PointInTimeField(
            required=False, help_text=f"Intervals that ended after this: {AT_HELP}"
        )
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("from"), attrs.get("until")
        if since is not None and until is not None and until <= since:
            raise serializers.ValidationError({"until": ["must be later than from"]})
        return attrs


class PoolAtQuerySerializer(StrictSerializer):
    strict_types = False
    at = PointInTimeField(help_text=f"The pool as it was then: {AT_HELP}")
    limit = serializers.IntegerField(
        required=False, default=100, min_value=0, max_value=10000, help_text="At most this many allocations"
    )


class SeedSerializer(PrebuiltOutputSerializer):
    class Meta:
        model = Seed
        fields = [
            "id",
            "name",
            "provider",
            "region",
            "ip_families",
            "nodes",
            "pods",
            "services",
            "shoot_default_pods",
            "shoot_default_services",
            "block_cidrs",
            "created_at",
        ]
        read_only_fields = fields


class SeedCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=63)
    provider = serializers.ChoiceField(choices=Provider.choices)
    region = serializers.CharField(max_length=64)
    ip_families = serializers.ListField(
        child=serializers.CharField(max_length=8), max_length=2, default=["IPv4"]
    )
    nodes = serializers.ListField(child=serializers.CharField(max_length=100), max_length=4, required=False)
    pods = serializers.ListField(child=serializers.CharField(max_length=100), max_length=4)
    services = serializers.ListField(child=serializers.CharField(max_length=100), max_length=4)
    shoot_default_pods = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=4, required=False
    )
    shoot_default_services = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=4, required=False
    )
    block_cidrs = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=100, required=False
    )


class NodeSerializer(PrebuiltOutputSerializer):
    pods = serializers.CharField(source="pod_allocation.cidr", read_only=True)

    class Meta:
        model = Node
        fields = ["id", "name", "ipv6_address", "pods", "created_at"]
        read_only_fields = fields


class NodeCreateSerializer(StrictSerializer):
    # the node's name is also its pod-range allocation's label
    name = serializers.CharField(max_length=cast(int, Allocation._meta.get_field("label").max_length))
    ipv6_address = serializers.CharField(max_length=100)


class ShootCreateSerializer(StrictSerializer):
    project = serializers.CharField(max_length=63)
    name = serializers.CharField(max_length=63)
    seed = serializers.SlugRelatedField(slug_field="name", queryset=Seed.objects.all())
    provider = serializers.ChoiceField(choices=Provider.choices)
    region = serializers.CharField(max_length=64)
    ip_families = serializers.ListField(
        child=serializers.CharField(max_length=8), min_length=1, max_length=2, default=["IPv4", "IPv6"]
    )
    layout = serializers.CharField(max_length=32, required=False, allow_blank=True)
    zones = serializers.IntegerField(min_value=1, max_value=layouts.AWS_MAX_ZONES, default=1)


class ShootSerializer(PrebuiltOutputSerializer):
    seed: serializers.SlugRelatedField[Seed] = serializers.SlugRelatedField(slug_field="name", read_only=True)
    networking = serializers.SerializerMethodField()

    class Meta:
        model = Shoot
        fields = [
            "id",
            "project",
            "name",
            "seed",
            "provider",
            "region",
            "ip_families",
            "layout",
            "zones",
            "state",
            "networking",
            "created_at",
            "created_by",
            "deleted_at",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                role: {"type": "array", "items": {"type": "string"}} for role in ("nodes", "pods", "services")
            },
        }
    )
    def get_networking(self, obj: Shoot) -> dict[str, list[str]]:
        from ..selectors import shoot_networking

        return shoot_networking(obj)


class IpFamiliesSerializer(StrictSerializer):
    ip_families = serializers.ListField(child=serializers.CharField(max_length=8), min_length=1, max_length=2)


class ShootBulkSerializer(StrictSerializer):
    shoots = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=1000)
