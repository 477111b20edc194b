"""Provider errors: what every adapter translates its SDK's exceptions into, at its boundary.

Two kinds matter to the job runner: :class:`TransientProviderError` (throttling,
5xx, timeouts, connection resets) is retried with backoff; every other
:class:`ProviderError` is permanent and fails the job with the provider's message.
Nothing SDK-specific leaves ``providers/adapters/``.

:class:`NoProviderAccount` is an API error like the others. The rest of the
exceptions at the end (:class:`JobCancelled`, :class:`JobDeferred`,
:class:`LeaseLost`, :class:`RetryLater`) are control-flow signals of the job
runner, not errors shown to a user: they derive from ``Exception``, not from
``IpamError``, so the API's exception handler never renders one.
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


class NoProviderAccount(IpamError):
    """No enabled provider account serves the shoot's provider and region (409)."""

    code = "no_provider_account"
    status = 409


class JobCancelled(Exception):
    """Control-flow signal, not an API error: an admin cancelled the running job.

    Raised inside the runner between steps; the attempt stops and the job stays cancelled.
    """


class JobDeferred(Exception):
    """Control-flow signal, not an API error: an earlier job of the same shoot is still active.

    This job waits its turn; the Celery task retries it after ``PROVISIONING_DEFER_SECONDS``.
    """


class LeaseLost(Exception):
    """Control-flow signal, not an API error: another attempt took the job over.

    The job was reaped as stale and claimed again; this attempt stops without writing.
    """


class RetryLater(Exception):
    """Control-flow signal, not an API error: a transient provider error left attempts.

    The job is pending again; the caller retries it after ``countdown`` seconds.
    ``error`` is the provider error that caused it.
    """

    def __init__(self, countdown: float, error: ProviderError) -> None:
        super().__init__(str(error))
        self.countdown = countdown
        self.error = error
