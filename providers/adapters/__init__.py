"""Adapter registry: exactly one adapter class per :class:`~providers.choices.AccountType`.

The account types are the registry's keys: :data:`_MODULES` names the module of
each type's adapter, and importing this package (done at start-up by
:meth:`providers.apps.ProvidersConfig.ready`) fails when a type has no module
or a module serves no type (so a new type cannot ship without its adapter, nor an
adapter without its type). ``@register`` refuses a slug that is no account type,
an adapter outside its type's module, and a second class for a slug.

``adapter_for(config)`` imports the adapter module lazily, so an SDK is only
loaded where its adapter is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

from providers.choices import AccountType

from .base import AccountConfig, Adapter

#: The module that registers each account type's adapter (imported on first use).
_MODULES: Mapping[str, str] = {
    AccountType.DRY_RUN: "providers.adapters.dryrun",
    AccountType.OPENSTACK: "providers.adapters.openstack",
    AccountType.AWS: "providers.adapters.aws",
}
_REGISTRY: dict[str, type[Adapter]] = {}


def check_modules(modules: Mapping[str, str]) -> None:
    """Refuse a registry whose keys are not exactly the account types (ImproperlyConfigured)."""
    missing = sorted(set(AccountType.values) - set(modules))
    unknown = sorted(set(modules) - set(AccountType.values))
    if missing:
        raise ImproperlyConfigured(
            f"account type(s) {', '.join(missing)} have no adapter: add the module to "
            "providers.adapters._MODULES or remove the type from providers.choices.AccountType"
        )
    if unknown:
        raise ImproperlyConfigured(
            f"adapter module(s) for {', '.join(unknown)} serve no account type: "
            "add the type to providers.choices.AccountType"
        )


check_modules(_MODULES)


def register(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: register ``cls`` under its ``slug``, an account type.

    Refuses a missing slug, a slug that is no account type, a class outside the
    module :data:`_MODULES` names for its type, and a second class for a slug.
    """
    slug = getattr(cls, "slug", "")
    if not slug:
        raise TypeError(f"{cls.__name__} has no slug")
    if slug not in _MODULES:
        raise ValueError(
            f"{cls.__name__} has slug {slug!r}, which is no account type; "
            f"known: {', '.join(AccountType.values)}"
        )
    home = _MODULES[slug]
    if cls.__module__ != home and not cls.__module__.startswith(f"{home}."):
        raise ValueError(
            f"{cls.__name__} ({cls.__module__}) registers {slug!r}, whose adapter lives in {home}"
        )
    existing = _REGISTRY.get(slug)
    if existing is not None and existing is not cls:
        raise ValueError(f"adapter slug {slug!r} is already registered by {existing.__name__}")
    _REGISTRY[slug] = cls
    return cls


def adapter_class(slug: str) -> type[Adapter]:
    """The adapter class for an account type (imports its module on first use)."""
    if slug not in _MODULES:
        raise ValueError(f"no adapter for account type {slug!r}; known: {', '.join(sorted(_MODULES))}")
    if slug not in _REGISTRY:
        importlib.import_module(_MODULES[slug])
    try:
        return _REGISTRY[slug]
    except KeyError:
        raise ImproperlyConfigured(
            f"{_MODULES[slug]} registers no adapter for account type {slug!r}"
        ) from None


def adapter_for(config: AccountConfig) -> Adapter:
    """An adapter for the account, of the class its type names."""
    return adapter_class(config.type)(config)
