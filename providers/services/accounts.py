"""Writes of provider accounts: create, change, delete, each checked and audited.

An account is checked as a whole before every save (:func:`_check_account`): its
type and provider are known and agree, the credential reference has a known
scheme and, for ``file:``, lies in the credentials directory (it is never
resolved here), the adapter accepts its options, the endpoint is allowed by
``PROVIDER_ENDPOINT_ALLOWED_HOSTS`` (:mod:`providers.endpoints`), and the model's
own validation passes. Credentials are stored by reference only.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from allocations.choices import Provider
from allocations.errors import AlreadyExists, InvalidState, IpamError
from audit.services import Actor, audit_record

from .. import credentials
from ..adapters import adapter_class
from ..adapters.base import AccountConfig
from ..choices import AccountType
from ..endpoints import endpoint_problem
from ..errors import ProviderError
from ..models import ProviderAccount


def _account_snapshot(account: ProviderAccount) -> dict[str, Any]:
    """The audited view of an account (its credential reference, never a secret)."""
    return {
        "name": account.name,
        "type": account.type,
        "provider": account.provider,
        "region": account.region,
        "endpoint": account.endpoint,
        "credentials_ref": account.credentials_ref,
        "options": account.options,
        "enabled": account.enabled,
    }


def _check_account(account: ProviderAccount) -> None:
    """Refuse an account that could not work (an IpamError naming the field); no cloud call."""
    if account.type not in AccountType.values:
        raise IpamError(
            f"unknown account type {account.type!r}; known: {', '.join(AccountType.values)}", field="type"
        )
    if account.provider not in Provider.values:
        raise IpamError(
            f"unknown provider {account.provider!r}; known: {', '.join(Provider.values)}", field="provider"
        )
    if account.type != AccountType.DRY_RUN and account.type != account.provider:
        raise IpamError(
            f"an account of type {account.type} serves {account.type} shoots, not {account.provider}",
            field="provider",
        )
    credentials.check_reference(account.credentials_ref)
    if not isinstance(account.options, dict):
        raise IpamError("options must be a JSON object", field="options")
    config = AccountConfig(
        name=account.name, type=account.type, region=account.region, options=account.options
    )
    try:
        adapter_class(account.type)(config).check_options()
    except ProviderError as exc:  # the adapter's own rule, told at once rather than when a job runs
        raise IpamError(exc.message, field="options") from None
    problem = endpoint_problem(account.endpoint)
    if problem is not None:  # where the portal sends signed requests and tokens (SSRF)
        raise IpamError(problem, field="endpoint")
    try:
        account.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise IpamError(f"{field}: {messages[0]}", field=field) from None


def _save_account(account: ProviderAccount) -> None:
    """Save, telling a duplicate name from a second enabled account for the same region."""
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError:
        if ProviderAccount.objects.exclude(pk=account.pk).filter(name=account.name).exists():
            raise AlreadyExists(f"an account named {account.name} exists already", field="name") from None
        raise AlreadyExists(
            f"an enabled account for {account.provider} {account.region} exists already; disable it first",
            field="region",
        ) from None


@transaction.atomic
def account_create(
    *,
    name: str,
    type: str,
    provider: str,
    region: str,
    actor: Actor,
    endpoint: str = "",
    credentials_ref: str = "none",
    options: dict[str, Any] | None = None,
    enabled: bool = True,
) -> ProviderAccount:
    """Create a provider account. Credentials are given by reference only (``env:``/``file:``)."""
    account = ProviderAccount(
        name=name,
        type=type,
        provider=provider,
        region=region,
        endpoint=endpoint,
        credentials_ref=credentials_ref,
        options=options if options is not None else {},
        enabled=enabled,
    )
    _check_account(account)
    _save_account(account)
    audit_record(actor=actor, action="account.create", obj=account, after=_account_snapshot(account))
    return account


#: What account_update may change; another name, type or provider is another account.
ACCOUNT_UPDATABLE = ("endpoint", "credentials_ref", "options", "enabled", "region")


@transaction.atomic
def account_update(*, account: ProviderAccount, actor: Actor, **changes: Any) -> ProviderAccount:
    """Change an account's endpoint, credential reference, options, region or enabled flag."""
    unknown = set(changes) - set(ACCOUNT_UPDATABLE)
    if unknown:
        field = sorted(unknown)[0]
        raise IpamError(f"{field} cannot be changed; create another account", field=field)
    account = ProviderAccount.objects.select_for_update().get(pk=account.pk)
    before = _account_snapshot(account)
    for key, value in changes.items():
        setattr(account, key, value)
    _check_account(account)
    _save_account(account)
    audit_record(
        actor=actor, action="account.update", obj=account, before=before, after=_account_snapshot(account)
    )
    return account


@transaction.atomic
def account_delete(*, account: ProviderAccount, actor: Actor) -> None:
    """Delete an account that never ran a job; otherwise disable it (its history stays)."""
    if account.jobs.exists() or account.resources.exists():
        raise InvalidState(
            f"account {account.name} has jobs and cloud resources on record; disable it instead",
            field="enabled",
        )
    audit_record(actor=actor, action="account.delete", obj=account, before=_account_snapshot(account))
    account.delete()
