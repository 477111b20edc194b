"""Adapter registry: one adapter class per account type, duplicates refused.

``adapter_for(config)`` imports the adapter module lazily, so an SDK is only
loaded where its adapter is used.
"""

from __future__ import annotations

import importlib

from .base import AccountConfig, Adapter

_MODULES = {
    "dry-run": "providers.adapters.dryrun",
    "openstack": "providers.adapters.openstack",
    "aws": "providers.adapters.aws",
}
_REGISTRY: dict[str, type[Adapter]] = {}


def register(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: register ``cls`` under its ``slug``; a second class for a slug is refused."""
    slug = getattr(cls, "slug", "")
    if not slug:
        raise TypeError(f"{cls.__name__} has no slug")
    existing = _REGISTRY.get(slug)
    if existing is not None and existing is not cls:
        raise ValueError(f"adapter slug {slug!r} is already registered by {existing.__name__}")
    _REGISTRY[slug] = cls
    return cls


def adapter_class(slug: str) -> type[Adapter]:
    """The adapter class for an account type (imports its module on first use)."""
    if slug not in _REGISTRY and slug in _MODULES:
        importlib.import_module(_MODULES[slug])
    try:
        return _REGISTRY[slug]
    except KeyError:
        raise ValueError(
            f"no adapter for account type {slug!r}; known: {', '.join(sorted(_MODULES))}"
        ) from None


def adapter_for(config: AccountConfig) -> Adapter:
    return adapter_class(config.type)(config)
