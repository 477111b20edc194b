"""Token and membership services (writes, audited)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from audit.services import Actor, audit_record
from ipam_portal.errors import Forbidden, InvalidState, IpamError

from . import roles
from .models import ApiToken, ProjectMembership

TOKEN_PREFIX = "ipam_"  # noqa: S105 - a public marker of our key format, not a secret


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


_OTHERS_REFUSED = "only admins can create tokens for other users"


def token_owner(*, username: str | None, requested_by: Any) -> Any:
    """The user a token is asked for: the caller itself, or (admins only) the user named.

    A caller that is not an admin gets the same refusal for every other name, existing
    or not, so the endpoint does not tell which user names exist.
    """
    if not username or username == requested_by.get_username():
        return requested_by
    if not roles.may_administer(requested_by):
        raise Forbidden(_OTHERS_REFUSED, field="user")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise IpamError(f"no user named {username!r}", field="user")
    return user


def token_create(
    *,
    user: Any,
    name: str,
    actor: Actor,
    read_only: bool = False,
    expires_at: dt.datetime | None = None,
    requested_by: Any | None = None,
    via_token: ApiToken | None = None,
    scope: str = ApiToken.Scope.API,
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the key, which is shown once and never stored.

    ``scope``: ``api`` (the REST API) or ``admission`` (only the Shoot admission webhook).

    ``requested_by`` (the API caller) may create tokens for itself; only admins for others.
    A token created with a token (``via_token``) never outlives it: no expiry means the
    caller's expiry, a later one is refused.
    """
    if requested_by is not None and requested_by != user and not roles.may_administer(requested_by):
        raise Forbidden(_OTHERS_REFUSED, field="user")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise IpamError("a token needs a name of at most 100 characters", field="name")
    if scope not in ApiToken.Scope.values:
        raise IpamError(f"scope must be one of {', '.join(ApiToken.Scope.values)}", field="scope")
    if expires_at is not None and expires_at <= timezone.now():
        raise IpamError("expiry must be in the future", field="expires_at")
    limit = via_token.expires_at if via_token is not None else None
    if limit is not None:
        if expires_at is not None and expires_at > limit:
            raise IpamError(
                f"a token cannot outlive the token that creates it (it expires {limit.isoformat()})",
                field="expires_at",
            )
        expires_at = expires_at or limit
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
            after={
                "user": user.get_username(),
                "name": name,
                "read_only": read_only,
                "prefix": prefix,
                "expires_at": expires_at.isoformat() if expires_at else None,
            }
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


def user_grant_role(*, username: str, role: str, projects: list[str], actor: Actor) -> Any:
    """Give ``username`` (created if new, without a password) ``role`` and operator ``projects``.

    Audited: ``user.create`` for a new user, ``token.grant`` for the role (what
    ``ipam_token grant`` does), ``membership.add`` per new project.
    """
    if role not in roles.ROLES:
        raise IpamError(f"unknown role {role!r}", field="role")
    if role == roles.OPERATOR and not projects:
        raise IpamError("an operator needs at least one --project", field="project")
    with transaction.atomic():
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            audit_record(actor=actor, action="user.create", obj=user, after=user_snapshot(user))
        before = user_snapshot(user)
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        roles.forget(user)
        audit_record(
            actor=actor,
            action="token.grant",
            obj=user,
            before=before,
            after={**user_snapshot(user), "role": role, "projects": sorted(projects)},
        )
        for project in projects:
            membership_add(user=user, project=project, actor=actor)
    return user


def user_snapshot(user: Any) -> dict[str, Any]:
    """What an auditor needs to know of a user's powers (never the password hash)."""
    return {
        "username": user.get_username(),
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)) if user.pk else [],
        "permissions": sorted(
            f"{app}.{code}"
            for app, code in user.user_permissions.values_list("content_type__app_label", "codename")
        )
        if user.pk
        else [],
    }


def membership_add(*, user: Any, project: str, actor: Actor) -> ProjectMembership:
    with transaction.atomic():
        membership, created = ProjectMembership.objects.get_or_create(user=user, project=project)
        if created:
            audit_record(actor=actor, action="membership.add", obj=membership, project=project)
    roles.forget(user)
    return membership
