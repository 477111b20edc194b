"""Roles: admin (everything), operator (writes within their Gardener projects), auditor (reads).

A user's role comes from Django: superusers and members of the group ``admin``
are admins; the groups ``operator`` and ``auditor`` give those roles. Anyone
else authenticated may read nothing. One place answers "may this user write
for this project?", "may this user allocate by hand from this pool?" and "may this
user choose a quarantine?" — the API, UI and admin all ask here.

Like Django's permission cache (``ModelBackend``), a user object remembers its
groups' role and its projects once read: a request loads its user afresh, and its
checks (may read, may write, this project, that project) then cost one query each
at most, not one per check. A service that changes them for a user object drops
that object's memory (:func:`forget`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from typing import Any, cast

ADMIN = "admin"
OPERATOR = "operator"
AUDITOR = "auditor"
ROLES = (ADMIN, OPERATOR, AUDITOR)
_GROUP_ROLE = "_ipam_group_role"  # attribute names of the memory on a user object
_PROJECTS = "_ipam_projects"
_UNKNOWN = object()


def user_role(user: Any) -> str | None:
    """The strongest role of ``user``, or None."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    role = getattr(user, _GROUP_ROLE, _UNKNOWN)
    if role is _UNKNOWN:
        names = set(user.groups.values_list("name", flat=True))
        role = next((r for r in ROLES if r in names), None)
        setattr(user, _GROUP_ROLE, role)
    return cast("str | None", role)  # the cache attribute holds a role name or None


def user_projects(user: Any) -> set[str]:
    projects = getattr(user, _PROJECTS, None)
    if projects is None:
        projects = frozenset(user.project_memberships.values_list("project", flat=True))
        setattr(user, _PROJECTS, projects)
    return set(projects)


def forget(user: Any) -> None:
    """Drop what ``user`` remembers of its role and projects (after changing them)."""
    for name in (_GROUP_ROLE, _PROJECTS):
        with contextlib.suppress(AttributeError):
            delattr(user, name)


def may_read(user: Any) -> bool:
    return user_role(user) is not None


def may_read_every_token(user: Any) -> bool:
    """Admins and auditors read every token's metadata (never a key: only hashes are kept)."""
    return user_role(user) in {ADMIN, AUDITOR}


def may_write_some(user: Any) -> bool:
    """Whether ``user`` may write anything at all: admins, and operators (within their projects).

    Decides whether write forms are offered; the write itself still asks
    :func:`may_write_project` or :func:`may_administer`.
    """
    return user_role(user) in (ADMIN, OPERATOR)


def may_write_project(user: Any, project: str) -> bool:
    """Admins write everything; operators only for projects they are members of."""
    role = user_role(user)
    if role == ADMIN:
        return True
    return role == OPERATOR and bool(project) and project in user_projects(user)


def project_write_refusal(user: Any, project: str) -> str | None:
    """Why ``user`` may not write for ``project`` (None when :func:`may_write_project` allows it)."""
    if may_write_project(user, project):
        return None
    return f"you are not a member of project {project!r}"


def may_administer(user: Any) -> bool:
    """Pools, seeds and other shared data: admins only."""
    return user_role(user) == ADMIN


def manual_allocation_refusal(user: Any, *, delegated_projects: Collection[str], project: Any) -> str | None:
    """Why ``user`` may not allocate by hand, for ``project``, from a pool delegated to ``delegated_projects``.

    None when allowed. Admins allocate from every pool (for any project or none);
    operators only for a project they are a member of *and* the pool is delegated to
    (a pool's ``delegated_projects``; empty: admins only); auditors never. A shoot's
    own pools refuse every manual allocation in the service, whoever asks.
    """
    role = user_role(user)
    if role == ADMIN:
        return None
    if role != OPERATOR:
        return "your role cannot allocate"
    if not isinstance(project, str) or not project:
        return "give a Gardener project you are a member of and the pool is delegated to"
    if project not in user_projects(user):
        return f"you are not a member of project {project!r}"
    if project not in delegated_projects:
        return f"this pool is not delegated to project {project!r}: only admins allocate from it by hand"
    return None


def may_allocate_manually(user: Any, delegated_projects: Collection[str], project: Any) -> bool:
    """Whether :func:`manual_allocation_refusal` allows it."""
    return manual_allocation_refusal(user, delegated_projects=delegated_projects, project=project) is None


def may_allocate_manually_from(user: Any, delegated_projects: Collection[str]) -> bool:
    """Whether ``user`` may allocate by hand from such a pool for some project (offers the form)."""
    role = user_role(user)
    return role == ADMIN or (role == OPERATOR and bool(set(delegated_projects) & user_projects(user)))


def may_choose_quarantine(user: Any) -> bool:
    """Only admins choose how long a released prefix stays quarantined; everyone else gets the default."""
    return user_role(user) == ADMIN
