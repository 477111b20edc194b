"""Roles: admin (everything), operator (writes within their Gardener projects), auditor (reads).

A user's role comes from Django: superusers and members of the group ``admin``
are admins; the groups ``operator`` and ``auditor`` give those roles. Anyone
else authenticated may read nothing. One place answers "may this user write
for this project?" — the API, UI and admin all ask here.
"""

from __future__ import annotations

from typing import Any

ADMIN = "admin"
OPERATOR = "operator"
AUDITOR = "auditor"
ROLES = (ADMIN, OPERATOR, AUDITOR)


def user_role(user: Any) -> str | None:
    """The strongest role of ``user``, or None."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))
    for role in ROLES:
        if role in names:
            return role
    return None


def user_projects(user: Any) -> set[str]:
    return set(user.project_memberships.values_list("project", flat=True))


def may_read(user: Any) -> bool:
    return user_role(user) is not None


def may_write_project(user: Any, project: str) -> bool:
    """Admins write everything; operators only for projects they are members of."""
    role = user_role(user)
    if role == ADMIN:
        return True
    return role == OPERATOR and bool(project) and project in user_projects(user)


def may_administer(user: Any) -> bool:
    """Pools, seeds and other shared data: admins only."""
    return user_role(user) == ADMIN
