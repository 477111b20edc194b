"""``/healthz``: database (and, where configured, broker) reachable; 503 otherwise."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


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
    body: dict[str, str] = {}
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
    body["status"] = "ok" if healthy else "error"
    return JsonResponse(body, status=200 if healthy else 503)
