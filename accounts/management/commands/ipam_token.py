"""``manage.py ipam_token``: create, list and revoke API tokens; grant roles and projects."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts import roles, services
from accounts.models import ApiToken
from ipam_portal.errors import NotFound
from ipam_portal.management.base import IpamCommand, positive_int


class Command(IpamCommand):
    help = (
        "API tokens: 'create USER NAME [--read-only] [--days N]' prints the key once; 'list [USER]'; "
        "'revoke PREFIX'; 'grant USER ROLE [--project P ...]' creates the user if needed."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        create = sub.add_parser("create", help="create a token and print its key (shown once)")
        create.add_argument("user")
        create.add_argument("name")
        create.add_argument("--read-only", action="store_true")
        create.add_argument(
            "--scope",
            choices=ApiToken.Scope.values,
            default=ApiToken.Scope.API,
            help="admission: webhook only",
        )
        create.add_argument("--days", type=positive_int, help="expire after this many days")
        listing = sub.add_parser("list", help="list tokens (never their keys)")
        listing.add_argument("user", nargs="?")
        revoke = sub.add_parser("revoke", help="revoke a token by its prefix")
        revoke.add_argument("prefix")
        grant = sub.add_parser("grant", help="give a user a role (and operator projects)")
        grant.add_argument("user")
        grant.add_argument("role", choices=roles.ROLES)
        grant.add_argument("--project", action="append", default=[])

    def _user(self, name: str) -> Any:
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise NotFound(f"no user named {name!r}", field="user")
        return user

    def handle(self, *args: Any, **options: Any) -> None:
        actor = self.actor(options)
        verb = options["verb"]
        if verb == "create":
            expires = timezone.now() + dt.timedelta(days=options["days"]) if options["days"] else None
            token, key = services.token_create(
                user=self._user(options["user"]),
                name=options["name"],
                read_only=options["read_only"],
                expires_at=expires,
                actor=actor,
                scope=options["scope"],
            )
            data = {
                "prefix": token.prefix,
                "key": key,
                "read_only": token.read_only,
                "expires_at": str(expires),
            }
            self.emit(options, data, lambda: [key])
        elif verb == "list":
            qs = ApiToken.objects.select_related("user").order_by("user__username", "-created_at")
            if options["user"]:
                qs = qs.filter(user=self._user(options["user"]))
            rows = [
                {
                    "prefix": t.prefix,
                    "user": t.user.username,
                    "name": t.name,
                    "read_only": t.read_only,
                    "expires_at": str(t.expires_at),
                    "revoked": t.revoked_at is not None,
                }
                for t in qs
            ]
            self.emit(options, rows, lambda: [" ".join(str(v) for v in r.values()) for r in rows])
        elif verb == "revoke":
            found = ApiToken.objects.filter(prefix=options["prefix"]).first()
            if found is None:
                raise NotFound(f"no token with prefix {options['prefix']!r}", field="prefix")
            services.token_revoke(token=found, actor=actor)
            self.emit(options, {"revoked": found.prefix}, lambda: [f"revoked {found.prefix}"])
        elif verb == "grant":
            role = options["role"]
            user = services.user_grant_role(
                username=options["user"], role=role, projects=options["project"], actor=actor
            )
            self.emit(
                options,
                {"user": user.username, "role": role, "projects": options["project"]},
                lambda: [f"{user.username}: {role} {' '.join(options['project'])}".rstrip()],
            )
