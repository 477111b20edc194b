"""Provider errors: what every adapter translates its SDK's exceptions into, at its boundary.

Two kinds matter to the job runner: :class:`TransientProviderError` (throttling,
5xx, timeouts, connection resets) is retried with backoff; every other
:class:`ProviderError` is permanent and fails the job with the provider's message.
Nothing SDK-specific leaves ``providers/adapters/``.
"""

from __future__ import annotations

from allocations.errors import IpamError


class ProviderError(IpamError):
    """A provider refused or failed a request. Permanent unless it is transient."""

    code = "provider_error"
    status = 502
    transient = False


class PermanentProviderError(ProviderError):
    """Retrying cannot help: invalid request, quota, missing resource we depend on."""

    code = "provider_permanent"


class TransientProviderError(ProviderError):
    """Throttling, HTTP 5xx, timeouts, dropped connections: retried with backoff."""

    code = "provider_transient"
    status = 503
    transient = True


class CredentialError(PermanentProviderError):
    """A credential reference that cannot be resolved or is refused by the provider."""

    code = "provider_credentials"


class JobCancelled(Exception):
    """Raised inside a running job when an admin cancelled it; stops between steps."""
