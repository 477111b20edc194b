"""SDK errors → the portal's provider errors (see the package docstring, *Errors*).

:func:`translate` maps one openstacksdk/keystoneauth/requests exception; ``_sdk`` is
the context manager around every SDK call of the adapter.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager

import keystoneauth1.exceptions as ks_exc
import openstack.exceptions as os_exc
import requests

from providers.errors import (
    CredentialError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)

from ..base import translating


def _neutron_error(exc: os_exc.HttpException) -> tuple[str, str]:
    """Neutron's error ``type`` and ``message`` from the response body (or the SDK's text)."""
    kind, message = "", ""
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("NeutronError"), dict):
            kind = str(body["NeutronError"].get("type") or "")
            message = str(body["NeutronError"].get("message") or "")
    return kind, message or str(exc.details or exc.message or exc)


def translate(exc: BaseException, what: str) -> ProviderError:
    """The portal's provider error for an openstacksdk/keystoneauth/requests exception.

    401/403 and unusable credentials → :class:`CredentialError`; 429, other 5xx,
    timeouts and connection errors → :class:`TransientProviderError`; Neutron's
    ``SubnetAllocationError`` (a CIDR outside the subnet pool answers 500) and every
    other 4xx → :class:`PermanentProviderError`. The provider's message is kept.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, os_exc.HttpException) and exc.status_code is not None:
        status = int(exc.status_code)
        kind, message = _neutron_error(exc)
        text = f"OpenStack {what}: HTTP {status}{f' {kind}' if kind else ''}: {message}"
        if status in (401, 403):
            return CredentialError(text)
        if status == 429:
            return TransientProviderError(text)
        if kind == "SubnetAllocationError":
            return PermanentProviderError(text)
        if status >= 500:
            return TransientProviderError(text)
        return PermanentProviderError(text)
    text = f"OpenStack {what}: {type(exc).__name__}: {exc}"
    if isinstance(exc, ks_exc.Unauthorized | ks_exc.Forbidden):
        return CredentialError(text)
    if any(isinstance(e, CONNECTION_ERRORS) for e in _chain(exc)):
        return TransientProviderError(text)
    if isinstance(exc, ks_exc.DiscoveryFailure):
        # keystoneauth swallows the refused connection or 5xx during endpoint version
        # discovery and raises this alone ("unavailable or misconfigured"): usually an
        # unreachable endpoint, so retried; a wrong URL fails after the bounded retries.
        return TransientProviderError(text)
    if isinstance(exc, ks_exc.HttpError):
        status = int(exc.http_status or 0)
        if status in (401, 403):
            return CredentialError(text)
        if status == 429 or status >= 500:
            return TransientProviderError(text)
        return PermanentProviderError(text)
    if isinstance(
        exc,
        ks_exc.AuthorizationFailure
        | ks_exc.auth_plugins.AuthPluginException
        | ks_exc.auth_plugins.OptionError
        | os_exc.ConfigException,
    ):
        return CredentialError(text)
    return PermanentProviderError(text)


CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ks_exc.ConnectionError,
    ks_exc.RetriableConnectionFailure,
    requests.ConnectionError,
    requests.Timeout,
    os_exc.ResourceTimeout,
    TimeoutError,
    ConnectionError,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts (bounded, cycles cut)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


#: What :func:`_sdk` translates; everything else (our own bugs) propagates unchanged.
SDK_ERRORS: tuple[type[BaseException], ...] = (
    os_exc.SDKException,
    ks_exc.ClientException,
    requests.RequestException,
    TimeoutError,
    ConnectionError,
)


def _sdk(what: str) -> AbstractContextManager[None]:
    """Translate SDK exceptions raised inside the block; ``what`` names the operation."""
    return translating(SDK_ERRORS, translate, what)
