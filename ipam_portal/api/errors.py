"""The one API error handler: every 4xx (and, via ``handler500``, every 500) is JSON, never HTML.

Domain errors (:class:`ipam_portal.errors.IpamError`) carry their own status and
field; DRF's validation errors become field lists; anything else DRF knows
(401, 403, 404, 405, 415, 429) keeps its status with the same shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ipam_portal.errors import IpamError
from ipam_portal.metrics import observe_api_error


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as one level: ``shoots[1].zones``, ``tags[1]`` (list items in brackets)."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # a ListField's child errors are keyed by index
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for i, item in enumerate(detail):
                out.update(_flatten(item, f"{prefix}[{i}]" if prefix else f"[{i}]"))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def error_body(detail: str, code: str, errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"detail": detail, "code": code, "errors": errors or {}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    observe_api_error(exc, context)
    if isinstance(exc, IpamError):
        errors = {exc.field: [exc.message]} if exc.field else {}
        body = error_body(exc.message, exc.code, errors)
        if exc.details:
            body["details"] = {k: str(v) for k, v in exc.details.items()}
        return Response(body, status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body(str(exc) or "request body too large", "too_large"), status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        first_field, first_messages = next(iter(errors.items()), ("", ["invalid input"]))
        detail = (
            f"{first_field}: {first_messages[0]}" if first_field != "non_field_errors" else first_messages[0]
        )
        response.data = error_body(detail, "invalid", errors)
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(str(exc.detail), code)
    return response


@contextmanager
def fields_renamed(names: dict[str, str]) -> Iterator[None]:
    """Domain errors inside name the request's field: a service's ``networks.pods`` becomes ``pods``."""
    try:
        yield
    except IpamError as exc:
        exc.field = names.get(exc.field or "", exc.field)
        raise


def server_error(request: Any, *args: Any, **kwargs: Any) -> Any:
    """``handler500``: under /api/ a crash answers the error shape in JSON; elsewhere Django's page."""
    from django.http import JsonResponse
    from django.views import defaults

    if request.path.startswith("/api/"):
        body = error_body("internal server error; the portal's log has the details", "server_error")
        return JsonResponse(body, status=500)
    return defaults.server_error(request, *args, **kwargs)


def not_found(request: Any, *args: Any, **kwargs: Any) -> Any:
    """JSON 404 for any unknown path under /api/ (instead of Django's HTML page)."""
    from django.http import JsonResponse

    return JsonResponse(error_body(f"no API endpoint at {request.path}", "not_found"), status=404)
