"""The adapter registry: keyed by the account types, one class per type, nothing else accepted."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from providers import adapters
from providers.adapters import adapter_class, check_modules, register
from providers.adapters.dryrun import DryRunAdapter
from providers.choices import AccountType


def test_every_account_type_has_a_registered_adapter_of_that_slug() -> None:
    for account_type in AccountType:
        assert adapter_class(account_type).slug == account_type


def test_an_account_type_without_an_adapter_module_is_refused() -> None:
    modules = {t: m for t, m in adapters._MODULES.items() if t != AccountType.AWS}
    with pytest.raises(ImproperlyConfigured, match=r"account type\(s\) aws have no adapter"):
        check_modules(modules)


def test_an_adapter_module_without_an_account_type_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="for gcp serve no account type"):
        check_modules({**adapters._MODULES, "gcp": "providers.adapters.gcp"})


def test_an_adapter_whose_slug_is_no_account_type_is_refused() -> None:
    class Gcp(DryRunAdapter):
        slug = "gcp"

    with pytest.raises(ValueError, match="'gcp', which is no account type"):
        register(Gcp)


def test_a_second_adapter_for_a_slug_is_refused() -> None:
    class Impostor(DryRunAdapter):
        slug = AccountType.DRY_RUN

    Impostor.__module__ = DryRunAdapter.__module__  # even from the type's own module
    with pytest.raises(ValueError, match="already registered by DryRunAdapter"):
        register(Impostor)
    assert adapter_class(AccountType.DRY_RUN) is DryRunAdapter


def test_an_adapter_outside_its_types_module_is_refused() -> None:
    class Elsewhere(DryRunAdapter):
        slug = AccountType.AWS

    with pytest.raises(ValueError, match=r"whose adapter lives in providers\.adapters\.aws"):
        register(Elsewhere)


def test_an_unknown_type_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no adapter for account type 'gcp'; known: aws, dry-run, openstack"):
        adapter_class("gcp")
