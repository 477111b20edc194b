"""``/healthz``: database (and, where configured, broker) reachable; 503 otherwise.

Apps above the kernel add what they know through :func:`register_health_check` (in their
``AppConfig.ready``), e.g. the controllers say whether they lead and when they last synced; the
kernel imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

#: name → check; a check returns (healthy, what to show under its name).
HealthCheck = Callable[[], tuple[bool, Any]]
_CHECKS: dict[str, HealthCheck] = {}


def register_health_check(name: str, check: HealthCheck) -> None:
    """Show ``check()``'s answer under ``name`` in ``/healthz``; False makes it 503 (idempotent)."""
    if name in {"database", "broker", "status"}:
        raise ValueError(f"{name!r} is the kernel's own entry")
    _CHECKS[name] = check


def _broker_ok() -> tuple[bool, str]:
    if not settings.CELERY_BROKER_URL:
        return True, "in-process"
    from ipam_portal.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001 - any broker failure means unhealthy
        return False, f"error: {exc.__class__.__name__}"
    return True, "ok"


def healthz(request: HttpRequest) -> JsonResponse:
    """Anonymous on purpose (load balancers); says nothing secret."""
    body: dict[str, Any] = {}
    healthy = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        body["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
        body["database"] = f"error: {exc.__class__.__name__}"
        healthy = False
    broker_ok, body["broker"] = _broker_ok()
    healthy = healthy and broker_ok
    for name, check in _CHECKS.items():
        if body["database"] != "ok":
            break  # the registered checks read the database
        try:
            ok, body[name] = check()
        except Exception as exc:  # noqa: BLE001 - a failing check is an unhealthy answer, not a 500
            ok, body[name] = False, f"error: {exc.__class__.__name__}"
        healthy = healthy and ok
    body["status"] = "ok" if healthy else "error"
    return JsonResponse(body, status=200 if healthy else 503)
