"""Token and membership services (writes, audited)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import Actor, audit_record
from ipam_portal.errors import Forbidden, InvalidState, IpamError

from . import roles
from .models import ApiToken, ProjectMembership

TOKEN_PREFIX = "ipam_"  # noqa: S105 - a public marker of our key format, not a secret


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_create(
    *,
    user: Any,
    name: str,
    actor: Actor,
    read_only: bool = False,
    expires_at: dt.datetime | None = None,
    requested_by: Any | None = None,
    scope: str = ApiToken.Scope.API,
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the key, which is shown once and never stored.

    ``scope``: ``api`` (the REST API) or ``admission`` (only the Shoot admission webhook).

    ``requested_by`` (the API caller) may create tokens for itself; only admins for others.
    """
    if requested_by is not None and requested_by != user and not roles.may_administer(requested_by):
        raise Forbidden("only admins can create tokens for other users", field="user")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise IpamError("a token needs a name of at most 100 characters", field="name")
    if scope not in ApiToken.Scope.values:
        raise IpamError(f"scope must be one of {', '.join(ApiToken.Scope.values)}", field="scope")
    if expires_at is not None and expires_at <= timezone.now():
        raise IpamError("expiry must be in the future", field="expires_at")
    prefix = secrets.token_hex(6)
    key = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=prefix,
            digest=token_digest(key),
            read_only=read_only,
            expires_at=expires_at,
            scope=scope,
        )
        audit_record(
            actor=actor,
            action="token.create",
            obj=token,
            after={"user": user.get_username(), "name": name, "read_only": read_only, "prefix": prefix}
            | ({"scope": scope} if scope != ApiToken.Scope.API else {}),
        )
    return token, key


def token_lookup(key: str) -> ApiToken | None:
    """The usable token for ``key``, or None (constant-time digest comparison)."""
    if not key.startswith(TOKEN_PREFIX) or key.count("_") < 2:
        return None
    prefix = key[len(TOKEN_PREFIX) :].split("_", 1)[0]
    # Every API request asks this: the prefix is unique, so no ORDER BY (the Meta ordering) to
    # build or sort, and the user comes in the same query.
    found = ApiToken.objects.select_related("user").filter(prefix=prefix).order_by()[:1]
    token = next(iter(found), None)
    if token is None or not hmac.compare_digest(token.digest, token_digest(key)):
        return None
    return token if token.is_usable and token.user.is_active else None


def token_revoke(*, token: ApiToken, actor: Actor) -> ApiToken:
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is not None:
            raise InvalidState("the token is already revoked", field="token")
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor, action="token.revoke", obj=token, after={"revoked_at": token.revoked_at.isoformat()}
        )
    return token


def membership_add(*, user: Any, project: str, actor: Actor) -> ProjectMembership:
    with transaction.atomic():
        membership, created = ProjectMembership.objects.get_or_create(user=user, project=project)
        if created:
            audit_record(actor=actor, action="membership.add", obj=membership, project=project)
    roles.forget(user)
    return membership
