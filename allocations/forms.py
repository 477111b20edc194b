"""Forms of the web UI. They only parse input; the services decide.

A form's ``cleaned_data`` becomes the keyword arguments of one service call; the
service's :class:`~allocations.errors.IpamError` is put back on the field it
names with :func:`add_service_error`, so the UI shows the same rule, in the same
words, as the API and the admin.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms

from . import history, layouts, names, prefixes, selectors
from .choices import FitPolicy, PoolKind, Provider, Purpose, Uniqueness
from .errors import IpamError
from .models import Pool, Seed
from .pool_rules import UPDATABLE, PoolRules
from .services.seeds import SEED_ERROR_FIELDS

FAMILY_CHOICES = [("IPv4,IPv6", "Dual-stack: IPv4 + IPv6"), ("IPv4", "IPv4 only")]


def _domain_check(check: Any, value: str, field: str) -> str:
    """Run a domain rule (``check(value, field)``) and turn its :class:`IpamError` into a field error."""
    try:
        return cast(str, check(value, field))
    except IpamError as exc:
        raise forms.ValidationError(exc.message) from None


def add_service_error(form: forms.Form, exc: IpamError) -> None:
    """Show a service's refusal on the field it names (or above the form if it names none here)."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message)


class AsOfForm(forms.Form):
    """``?as_of=`` of the pool, allocation and shoot pages: an instant as the API's ``at`` takes it."""

    as_of = forms.CharField(
        required=False,
        max_length=40,
        label="As of (UTC)",
        help_text="A date (2026-03-01) or a time (2026-03-01T12:00:00Z); empty: now.",
        widget=forms.TextInput(attrs={"placeholder": "2026-03-01T12:00:00Z", "autocomplete": "off"}),
    )

    def clean_as_of(self) -> Any:
        value = self.cleaned_data["as_of"]
        if not value:
            return None
        try:
            return history.parse_instant(value, field="as_of")
        except IpamError as exc:
            raise forms.ValidationError(exc.message) from None


def comma_list(text: str) -> list[str]:
    """``a, b,c`` as a list, blanks dropped (list rules edited as text)."""
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _blank_to_none(value: Any) -> Any:
    return None if value in ("", None) else value


def _length_field(label: str, help_text: str = "") -> forms.IntegerField:
    return forms.IntegerField(required=False, min_value=0, max_value=128, label=label, help_text=help_text)


class PoolCreateForm(forms.Form):
    """Input of :func:`allocations.services.pool_create`: a root pool by CIDR or a child of a parent."""

    name = forms.CharField(max_length=200)
    cidr = forms.CharField(
        required=False,
        max_length=100,
        label="CIDR",
        help_text="e.g. 2001:db8::/32. With a parent and no CIDR the next free prefix is carved.",
    )
    parent = forms.ModelChoiceField(
        queryset=Pool.objects.filter(retired_at__isnull=True).order_by("family", "first"),
        required=False,
        help_text="Carve the pool from this pool",
    )
    prefix_length = _length_field("Prefix length", "With a parent and no CIDR")
    kind = forms.ChoiceField(choices=PoolKind.choices, initial=PoolKind.OWNED)
    uniqueness = forms.ChoiceField(choices=Uniqueness.choices, initial=Uniqueness.GLOBAL)
    purpose = forms.ChoiceField(choices=Purpose.choices, initial=Purpose.GENERAL)
    default_prefix_length = _length_field("Default allocation length", "e.g. 56")
    min_prefix_length = _length_field("Shortest allowed length")
    max_prefix_length = _length_field("Longest allowed length")
    fit_policy = forms.ChoiceField(choices=FitPolicy.choices, initial=FitPolicy.LOWEST_FIRST)
    project_quota = forms.IntegerField(
        required=False, min_value=0, help_text="Per Gardener project: /64s for IPv6, addresses for IPv4"
    )
    delegated_projects = forms.CharField(
        required=False,
        max_length=10000,
        help_text="Comma-separated Gardener projects whose operators may allocate by hand (empty: admins only)",
    )
    provider = forms.ChoiceField(choices=[("", "—"), *Provider.choices], required=False)
    region = forms.CharField(max_length=64, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def service_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``pool_create``: the pool's rules as one value, empty values left out."""
        data = dict(self.cleaned_data)
        data["cidr"] = _blank_to_none(data["cidr"].strip())
        data["delegated_projects"] = comma_list(data["delegated_projects"])
        rules, rest = PoolRules.split({k: v for k, v in data.items() if v is not None})
        return {**rest, "rules": rules}


class PoolEditForm(PoolCreateForm):
    """Input of :func:`allocations.services.pool_update`: the rules that may change (not name or prefix)."""

    FIXED = ("name", "cidr", "parent", "prefix_length", "uniqueness")

    def __init__(self, *args: Any, pool: Pool, **kwargs: Any) -> None:
        kwargs["initial"] = {
            **{name: getattr(pool, name) for name in PoolRules.of(pool).updatable()},
            "delegated_projects": ", ".join(pool.delegated_projects or []),
        }
        super().__init__(*args, **kwargs)
        for name in self.FIXED:
            del self.fields[name]

    def service_kwargs(self) -> dict[str, Any]:
        """The ``pool_update`` keywords: every rule of the form (an emptied length clears it)."""
        data = dict(self.cleaned_data)
        data["delegated_projects"] = comma_list(data["delegated_projects"])
        return {k: v for k, v in data.items() if k in UPDATABLE}


class AllocateForm(forms.Form):
    """Input of :func:`allocations.services.pool_allocate`: next free /N, or a given CIDR."""

    prefix_length = _length_field("Next free of length", "Leave empty for the pool's default")
    cidr = forms.CharField(required=False, max_length=100, label="Or this CIDR")
    project = forms.CharField(required=False, max_length=63, help_text="Gardener project (for quota)")
    label = forms.CharField(required=False, max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, pool: Pool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if pool is not None:
            self.fields["prefix_length"].widget.attrs.update(
                {"min": pool.effective_min_length, "max": pool.effective_max_length}
            )
            if pool.default_prefix_length:
                self.fields["prefix_length"].widget.attrs["placeholder"] = str(pool.default_prefix_length)

    def service_kwargs(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        cidr = data["cidr"].strip()
        if cidr:
            data["cidr"] = cidr
            if data["prefix_length"] is None:
                del data["prefix_length"]
        else:
            del data["cidr"]
        return {k: v for k, v in data.items() if v is not None}


class RelabelForm(forms.Form):
    """Input of :func:`allocations.services.allocation_relabel`."""

    label = forms.CharField(required=False, max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, allocation: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"label": allocation.label, "description": allocation.description})
        super().__init__(*args, **kwargs)


class ReleaseForm(forms.Form):
    """Confirmation of a release; admins may choose the quarantine (others get the service's default)."""

    confirm = forms.BooleanField(required=True, label="Yes, release it")
    quarantine_seconds = forms.IntegerField(
        required=False, min_value=0, help_text="Empty: IPAM_QUARANTINE_SECONDS; 0 frees it at once"
    )

    def __init__(self, *args: Any, may_choose_quarantine: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.may_choose_quarantine = may_choose_quarantine
        if not may_choose_quarantine:  # not offered; sent anyway, it is refused on its field
            self.fields["quarantine_seconds"].widget = forms.HiddenInput()

    def clean_quarantine_seconds(self) -> int | None:
        seconds = self.cleaned_data.get("quarantine_seconds")
        if seconds is not None and not self.may_choose_quarantine:
            raise forms.ValidationError("only admins choose the quarantine")
        return seconds

    def service_kwargs(self) -> dict[str, Any]:
        """The ``allocation_release`` keywords: the quarantine when an admin chose one."""
        seconds = self.cleaned_data.get("quarantine_seconds")
        return {} if seconds is None else {"quarantine_seconds": seconds}


class RetireForm(forms.Form):
    """Confirmation of a pool's retirement (the consequences are spelled out beside it)."""

    confirm = forms.BooleanField(required=True, label="Yes, retire it")


class ShootCreateForm(forms.Form):
    """Input of :func:`allocations.services.shoot_allocate`."""

    project = forms.CharField(max_length=63, help_text="Gardener project")
    name = forms.CharField(max_length=63)
    seed = forms.ModelChoiceField(queryset=Seed.objects.order_by("name"))
    provider = forms.ChoiceField(choices=Provider.choices)
    region = forms.ChoiceField(help_text="The regions that have a pool for shoots")
    ip_families = forms.ChoiceField(choices=FAMILY_CHOICES, label="IP families")
    layout = forms.ChoiceField(required=False, help_text="Empty: the provider's default layout")
    zones = forms.IntegerField(min_value=1, max_value=layouts.AWS_MAX_ZONES, initial=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = sorted(layouts.LAYOUTS)
        cast(forms.ChoiceField, self.fields["layout"]).choices = [("", "default"), *((n, n) for n in names)]
        regions = selectors.shoot_regions()
        cast(forms.ChoiceField, self.fields["region"]).choices = [
            ("", "—"),
            *((region, f"{region} ({', '.join(providers)})") for region, providers in regions.items()),
        ]

    # The rules the service applies before it touches the database, checked here too so
    # that every wrong field is reported at once (same functions, same words).
    def clean_project(self) -> str:
        return _domain_check(names.check_name, self.cleaned_data["project"], "project")

    def clean_name(self) -> str:
        return _domain_check(names.check_name, self.cleaned_data["name"], "name")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        provider, layout = data.get("provider"), data.get("layout")
        if provider and layout:
            chosen = layouts.get_layout(layout)
            if chosen.provider != provider:
                self.add_error("layout", f"layout {chosen.name} is for {chosen.provider}, not {provider}")
        return data

    def service_kwargs(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["ip_families"] = data["ip_families"].split(",")
        data["layout"] = data["layout"] or None
        return data


class NodeRegisterForm(forms.Form):
    """Input of :func:`allocations.services.node_register`."""

    name = forms.CharField(max_length=253, label="Node name")
    ipv6_address = forms.CharField(max_length=100, label="Node IPv6 address")


SEED_FAMILY_CHOICES = [("IPv4", "IPv4"), ("IPv4,IPv6", "Dual-stack: IPv4 + IPv6"), ("IPv6", "IPv6")]


def _cidrs_field(
    label: str, help_text: str = "Comma-separated CIDRs", required: bool = False
) -> forms.CharField:
    return forms.CharField(required=required, max_length=2000, label=label, help_text=help_text)


class SeedForm(forms.Form):
    """Input of :func:`allocations.services.seed_create` (on an edit: ``seed_update``'s fields only)."""

    name = forms.CharField(max_length=63, help_text="The seed's name in the garden")
    provider = forms.ChoiceField(choices=Provider.choices)
    region = forms.CharField(max_length=64)
    ip_families = forms.ChoiceField(choices=SEED_FAMILY_CHOICES, label="IP families")
    nodes = _cidrs_field("Node networks", "Comma-separated CIDRs (optional)")
    pods = _cidrs_field("Pod networks", required=True)
    services = _cidrs_field("Service networks", required=True)
    shoot_default_pods = _cidrs_field("Shoot default pods", "For shoots without their own (optional)")
    shoot_default_services = _cidrs_field("Shoot default services", "For shoots without their own (optional)")
    block_cidrs = _cidrs_field("Blocked CIDRs", "Networks the seed's shoot control planes may not reach")

    CIDR_FIELDS = ("nodes", "pods", "services", "shoot_default_pods", "shoot_default_services", "block_cidrs")

    def __init__(
        self, *args: Any, seed: Seed | None = None, updatable: tuple[str, ...] = (), **kwargs: Any
    ) -> None:
        if seed is not None:
            kwargs["initial"] = {"region": seed.region, "block_cidrs": ", ".join(seed.block_cidrs or [])}
        super().__init__(*args, **kwargs)
        self.seed = seed
        if seed is not None:
            for name in list(self.fields):
                if name not in updatable:
                    del self.fields[name]

    def clean_name(self) -> str:
        return _domain_check(names.check_name, self.cleaned_data["name"], "name")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # every CIDR by the service's own parser, so each wrong field is reported at once
        for name in self.CIDR_FIELDS:
            if name in self.fields and name in data:
                try:
                    data[name] = [
                        str(prefixes.parse_canonical_cidr(item, field=name))
                        for item in comma_list(data[name])
                    ]
                except IpamError as exc:
                    self.add_error(name, exc.message)
        return data

    def service_kwargs(self) -> dict[str, Any]:
        """``seed_create``'s keywords, or on an edit the fields that changed."""
        data = dict(self.cleaned_data)
        if self.seed is not None:
            return {k: v for k, v in data.items() if getattr(self.seed, k) != v}
        data["ip_families"] = data["ip_families"].split(",")
        return data

    def add_service_error(self, exc: IpamError) -> None:
        """The service's refusal on its field (Gardener's ``networks.pods[0]`` is the form's ``pods``)."""
        field = exc.field or ""
        for service_name, name in SEED_ERROR_FIELDS.items():
            if field == service_name or field.startswith(service_name + "["):
                field = name
        self.add_error(field if field in self.fields else None, exc.message)
