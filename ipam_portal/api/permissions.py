"""The API's role check: reads for every role, writes by role and Gardener project.

Object- and project-level decisions are made in one place, :mod:`accounts.roles`
(asked through :mod:`ipam_portal.access`);
views declare what a write concerns (``write_scope``: ``"admin"`` for shared data
such as pools and seeds, ``"project"`` for shoot-owned data) and, for project
writes, how to find the project (``get_write_project``).
"""

from __future__ import annotations

from typing import Any

from rest_framework import permissions

from ..access import Credential, policy


class RolePermission(permissions.BasePermission):
    message = "your role does not allow this"

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not policy().may_read(user):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        if isinstance(request.auth, Credential) and request.auth.read_only:
            self.message = "this token is read-only"
            return False
        if not policy().may_write_some(user):  # a reader that may not write: an auditor
            self.message = "auditors can read, not write"
            return False
        scope = getattr(view, "write_scope", "admin")
        if scope == "self":  # one's own things (API tokens): any role that may write
            return True
        if scope == "admin" and not policy().may_administer(user):
            self.message = "only admins can change this"
            return False
        if scope == "project":
            project = view.get_write_project(request)
            refusal = policy().project_write_refusal(user, project) if project is not None else None
            if refusal:
                self.message = refusal
                return False
        return True

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        if getattr(view, "write_scope", "admin") == "project":
            project = view.get_write_project(request)
            if project is None:  # the object itself belongs to a project (shoot, node, allocation)
                project = getattr(obj, "project", "")
            refusal = policy().project_write_refusal(request.user, project)
            if refusal:
                self.message = refusal
                return False
        return True


class AdminOnly(permissions.BasePermission):
    """Reads and writes for admins only (with :class:`RolePermission` for the token rules)."""

    message = "only admins can see or change this"

    def has_permission(self, request: Any, view: Any) -> bool:
        return policy().may_administer(request.user)
