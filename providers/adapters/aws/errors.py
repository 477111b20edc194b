"""AWS errors at the adapter's boundary: every botocore/boto3 exception becomes a provider error.

See "Errors" in the package doc: throttling, HTTP 5xx, ``DependencyViolation``,
timeouts and connection errors are transient; refused credentials are a
credential error; everything else is permanent, with AWS's code and message.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    WaiterError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from botocore.parsers import ResponseParserError

from providers.errors import (
    CredentialError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)

from ..base import translating

#: Error codes AWS uses for throttling and for its own temporary trouble.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "EC2ThrottledException",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        # EC2 is eventually consistent: an ENI or association still vanishing.
        "DependencyViolation",
        "IncorrectState",
    }
)
#: Error codes that say the credentials themselves were refused.
CREDENTIAL_CODES = frozenset(
    {
        "AuthFailure",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "InvalidAccessKeyId",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "AuthFailure.ServiceLinkedRoleCreationNotPermitted",
    }
)


def translate(exc: BaseException, what: str = "") -> ProviderError:
    """The portal's provider error for a botocore/boto3 exception (AWS's code and message kept).

    Throttling codes, HTTP 5xx, timeouts and connection errors →
    :class:`TransientProviderError`; refused or missing credentials →
    :class:`CredentialError`; every other error → :class:`PermanentProviderError`.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error") or {}
        meta = exc.response.get("ResponseMetadata") or {}
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or "") or str(exc)
        status = int(meta.get("HTTPStatusCode") or 0)
        operation = exc.operation_name or "request"
        where = f" ({what})" if what else ""
        text = f"AWS {operation}{where}: {code or f'HTTP {status}'}: {message}"
        if code in CREDENTIAL_CODES:
            return CredentialError(text, aws_code=code, http_status=status)
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientProviderError(text, aws_code=code, http_status=status)
        return PermanentProviderError(text, aws_code=code, http_status=status)
    prefix = f"AWS {what}: " if what else "AWS: "
    text = f"{prefix}{type(exc).__name__}: {exc}"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CredentialError(text)
    if isinstance(
        exc,
        BotoConnectionError
        | HTTPClientError
        | WaiterError
        | ResponseParserError
        | TimeoutError
        | ConnectionError,
    ):
        # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError
        # and proxy errors are all botocore ConnectionErrors; an unparsable answer (a proxy's
        # or load balancer's HTML error page) is worth another try too.
        return TransientProviderError(text)
    return PermanentProviderError(text)


#: What :func:`_sdk` translates; everything else (our own bugs) propagates unchanged.
SDK_ERRORS: tuple[type[BaseException], ...] = (
    BotoCoreError,
    ClientError,
    ResponseParserError,
    TimeoutError,
    ConnectionError,
)


def _sdk(what: str = "") -> AbstractContextManager[None]:
    """Translate SDK exceptions raised inside the block; ``what`` names the operation."""
    return translating(SDK_ERRORS, translate, what)


def _code(exc: ClientError) -> str:
    return str((exc.response.get("Error") or {}).get("Code") or "")


def _not_found(exc: ClientError) -> bool:
    return _code(exc).endswith("NotFound")
