"""Audit events for sign-ins: logins, failed logins and lock-outs (UI and admin forms).

Django's ``user_logged_in`` / ``user_login_failed`` and django-axes' ``user_locked_out``
fire for every form login (the UI's ``/login/`` and the admin's); each leaves an
event whose source says which door was used. A failed login names the user name
that was tried, which may not exist, so the subject is given by name. Failed API
token authentication is audited in :mod:`accounts.authentication`.
"""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from audit.models import AuditEvent
from audit.services import Actor, audit_record

USER_TYPE = "auth.user"


def client_address(request: Any) -> str:
    """The client's address as Django sees it (behind a proxy: set up axes' IPWARE settings)."""
    if request is None:
        return ""
    return getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR", "")


def _source(request: Any) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None and match.app_name == "admin":
        return AuditEvent.Source.ADMIN
    return AuditEvent.Source.UI


def _tried(name: Any) -> str:
    return str(name or "")[:150] or "anonymous"


@receiver(user_logged_in, dispatch_uid="audit-login")
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(
        actor=Actor(user.get_username(), _source(request)),
        action="auth.login",
        obj=user,
        message=f"from {client_address(request)}",
    )


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def audit_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    name = _tried(credentials.get("username"))
    audit_record(
        actor=Actor(name, _source(request)),
        action="auth.login-failed",
        object_type=USER_TYPE,
        object_id=name,
        object_repr=name,
        message=f"from {client_address(request)}",
    )


@receiver(user_locked_out, dispatch_uid="audit-lockout")
def audit_lockout(
    sender: Any, request: Any, username: Any = None, ip_address: Any = None, **kwargs: Any
) -> None:
    name = _tried(username)
    audit_record(
        actor=Actor(name, _source(request)),
        action="auth.lockout",
        object_type=USER_TYPE,
        object_id=name,
        object_repr=name,
        message=f"locked out after repeated failures from {ip_address or client_address(request)}",
    )
