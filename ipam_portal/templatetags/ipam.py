"""Template filters of the web UI: numbers through :mod:`ipam_portal.numbers`, IPv6 that wraps.

``{% load ipam %}`` then ``{{ n|grouped }}``, ``{{ n|amount }}``, ``{{ fraction|percent }}``,
``{{ cidr|wrap_colons }}`` (a word-break opportunity after every colon, so that a
long IPv6 prefix wraps in a narrow column instead of widening it).
"""

from __future__ import annotations

from fractions import Fraction

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from ipam_portal import numbers, ui

register = template.Library()


@register.filter
def grouped(value: int | str | None) -> str:
    """Digits grouped by three (``16 777 215``); anything not an integer unchanged."""
    try:
        return numbers.grouped(int(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "" if value is None else str(value)


@register.filter
def amount(value: int | str | None) -> str:
    """A count short enough to read (``3 812``, ``2⁴⁶``, ``70.4 T``)."""
    try:
        return numbers.amount(int(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "" if value is None else str(value)


@register.filter
def percent(value: Fraction | float | int | None) -> str:
    """A share (a fraction of 1) as a percentage without scientific notation."""
    if value is None:
        return ""
    return numbers.percent(Fraction(value))


@register.filter
def wrap_colons(value: object) -> SafeString:
    """Escape ``value`` and let it break after each ``:`` (IPv6) or ``.`` (IPv4)."""
    text = str(conditional_escape("" if value is None else str(value)))
    return mark_safe(text.replace(":", ":<wbr>"))  # noqa: S308 - escaped just above


@register.filter
def object_url(event: object) -> str:
    """The UI page of an audit event's object ('' when there is none)."""
    return ui.object_page(getattr(event, "object_type", ""), getattr(event, "object_id", "")) or ""


@register.filter
def action_label(action: str) -> str:
    """An audit action in words (``allocation.allocate`` → ``allocated``)."""
    return ui.action_label(str(action or ""))


@register.filter
def object_kind(object_type: str) -> str:
    """``allocations.allocation`` → ``allocation`` (the model's verbose name)."""
    from django.apps import apps

    try:
        return str(apps.get_model(str(object_type))._meta.verbose_name)
    except (LookupError, ValueError):
        return str(object_type)


@register.filter
def human(value: object) -> str:
    """A value for people: lists joined with commas, mappings as ``key: value``, no Python syntax."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {human(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(human(v) for v in value) or "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
