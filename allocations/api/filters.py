"""django-filter sets: every list filters by family, pool, state, role, project, seed, shoot,
provider, and by address containment (``contains=``) or prefix (``within=``)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError

from .. import names, prefixes, selectors
from ..choices import AllocationState, Family, OwnerType, PoolKind, Provider, Purpose, Role, ShootState
from ..errors import IpamError
from ..models import Allocation, Pool, Shoot


class IdFilter(django_filters.NumberFilter):
    """A database id: a whole number in the range ids can have (else 400 naming the field)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


def _prefix(value: str, field: str) -> prefixes.IPNetwork:
    try:
        return prefixes.parse_address_or_prefix(value, field=field)
    except IpamError as exc:
        raise ValidationError({field: [exc.message]}) from None


MAX_ID = 2**63 - 1


def filter_shoot(queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
    """``shoot=ID`` or ``shoot=PROJECT/NAME`` (the one form :mod:`allocations.names` reads)."""
    if value.isascii() and value.isdigit():
        if not 1 <= int(value) <= MAX_ID:
            raise ValidationError({"shoot": [f"a shoot id is a whole number from 1 to {MAX_ID}"]})
        return queryset.filter(shoot_id=int(value))
    try:
        project, shoot_name = names.parse_shoot_key(value, field="shoot")
    except IpamError as exc:
        raise ValidationError({"shoot": [f"{exc.message} (or a shoot id)"]}) from None
    return queryset.filter(shoot__project=project, shoot__name=shoot_name)


class ContainsWithinMixin:
    """``contains=ADDR|PREFIX``: objects whose prefix contains it; ``within=PREFIX``: inside it."""

    def filter_contains(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        net = _prefix(value, "contains")
        # most specific first: "who owns this address?"
        return queryset.filter(selectors.containing_keys(net), family=net.version).order_by("-prefix_length")

    def filter_within(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        net = _prefix(value, "within")
        return queryset.filter(selectors.within_keys(net), family=net.version)


class PoolFilterSet(ContainsWithinMixin, django_filters.FilterSet):
    family = django_filters.ChoiceFilter(choices=Family.choices)
    kind = django_filters.ChoiceFilter(choices=PoolKind.choices)
    purpose = django_filters.ChoiceFilter(choices=Purpose.choices)
    provider = django_filters.ChoiceFilter(choices=Provider.choices)
    region = django_filters.CharFilter()
    parent = IdFilter(field_name="parent_id")
    name = django_filters.CharFilter(lookup_expr="icontains")
    retired = django_filters.TypedChoiceFilter(
        field_name="retired_at",
        lookup_expr="isnull",
        exclude=True,
        choices=[("true", "true"), ("false", "false")],
        coerce=lambda v: v == "true",
    )
    contains = django_filters.CharFilter(method="filter_contains", label="Contains address or prefix")
    within = django_filters.CharFilter(method="filter_within", label="Inside prefix")

    class Meta:
        model = Pool
        fields = [
            "family",
            "kind",
            "purpose",
            "provider",
            "region",
            "parent",
            "name",
            "uniqueness",
            "fit_policy",
        ]


class AllocationFilterSet(ContainsWithinMixin, django_filters.FilterSet):
    family = django_filters.ChoiceFilter(choices=Family.choices)
    pool = IdFilter(field_name="pool_id")
    state = django_filters.ChoiceFilter(choices=AllocationState.choices)
    role = django_filters.ChoiceFilter(choices=Role.choices)
    owner_type = django_filters.ChoiceFilter(choices=OwnerType.choices)
    project = django_filters.CharFilter()
    shoot = django_filters.CharFilter(method=filter_shoot, label="Shoot id or PROJECT/NAME")
    seed = django_filters.CharFilter(field_name="shoot__seed__name")
    provider = django_filters.ChoiceFilter(field_name="shoot__provider", choices=Provider.choices)
    label = django_filters.CharFilter()
    contains = django_filters.CharFilter(method="filter_contains", label="Contains address or prefix")
    within = django_filters.CharFilter(method="filter_within", label="Inside prefix")

    class Meta:
        model = Allocation
        fields = ["family", "pool", "state", "role", "owner_type", "project", "shoot", "label"]


class ShootFilterSet(django_filters.FilterSet):
    project = django_filters.CharFilter()
    name = django_filters.CharFilter()
    seed = django_filters.CharFilter(field_name="seed__name")
    provider = django_filters.ChoiceFilter(choices=Provider.choices)
    region = django_filters.CharFilter()
    state = django_filters.ChoiceFilter(choices=ShootState.choices)
    layout = django_filters.CharFilter()
    family = django_filters.ChoiceFilter(choices=[("IPv4", "IPv4"), ("IPv6", "IPv6")], method="filter_family")

    class Meta:
        model = Shoot
        fields = ["project", "name", "seed", "provider", "region", "state", "layout"]

    def filter_family(self, queryset: QuerySet[Shoot], name: str, value: str) -> QuerySet[Shoot]:
        # ip_families is a JSON list; portable JSON containment differs per database, so filter in Python
        shoots = [pk for pk, families in queryset.values_list("pk", "ip_families") if value in families]
        return queryset.filter(pk__in=shoots)
