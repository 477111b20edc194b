"""What every web UI page shares: access checks, rendering, pagination, the UI actor, panels.

Every app's views use these, so a page looks and behaves the same wherever it is
defined: it requires a login and a role that may read (:func:`reader`), renders
with the user's role and what it may do (:func:`page`), paginates the same way
(:func:`paginate`) and records writes as the user through the UI door
(:func:`ui_actor`). Who may do what is answered by :mod:`accounts.roles` only;
the helpers here turn its answers into a 403.

Pages of one app may show what another app knows without importing it: the page
asks :func:`contributions` for its named panel, and the app that knows more adds
a *context contributor* with :func:`contribute` from its ``AppConfig.ready()``
(the provisioning jobs on the dashboard and on a shoot's page, for instance).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from .access import policy
from .actors import Actor, Source

PAGE_SIZE = 50
View = Callable[..., HttpResponseBase]  # streamed responses (CSV exports) are views too
#: ``contributor(request, **objects)`` → extra template context of a page.
ContextContributor = Callable[..., dict[str, Any]]

_contributors: dict[str, list[ContextContributor]] = {}
_object_pages: dict[str, str] = {}
_action_labels: dict[str, str] = {}


# --- access --------------------------------------------------------------------------


def ui_actor(request: HttpRequest) -> Actor:
    """The audit actor of a UI request (source ``ui``; the API and admin have their own doors)."""
    return Actor(request.user.get_username(), Source.UI)


def require_project_write(request: HttpRequest, project: str) -> None:
    """403 unless :func:`accounts.roles.may_write_project` (through :mod:`ipam_portal.access`) allows ``project``."""
    if not policy().may_write_project(request.user, project):
        raise PermissionDenied(f"you may not change project {project!r}")


def require_some_write(request: HttpRequest, refusal: str) -> None:
    """403 (saying ``refusal``) unless :func:`accounts.roles.may_write_some` allows writes at all."""
    if not policy().may_write_some(request.user):
        raise PermissionDenied(refusal)


def require_admin(request: HttpRequest) -> None:
    """403 unless :func:`accounts.roles.may_administer` says the user is an admin."""
    if not policy().may_administer(request.user):
        raise PermissionDenied("only admins can do this")


def reader(view: View) -> View:
    """Login required (redirect to the login page), then a role that may read (else 403)."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not policy().may_read(request.user):
            raise PermissionDenied("your account has no role in the IPAM portal")
        return view(request, *args, **kwargs)

    return wrapped


# --- rendering -----------------------------------------------------------------------


def page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """Render with what every page needs: the user's role and what it may do."""
    context = {
        "role": policy().user_role(request.user),
        "is_admin": policy().may_administer(request.user),
        "may_write": policy().may_write_some(request.user),
        **context,
    }
    return render(request, template, context, status=status)


def paginate(
    request: HttpRequest, queryset: QuerySet[Any], size: int = PAGE_SIZE, count: int | None = None
) -> Page:
    """One page of ``queryset`` (``?page=``; out-of-range pages give the last one).

    ``count``, when the caller already knows it, saves the ``COUNT(*)`` query.
    """
    paginator = Paginator(queryset, size)
    if count is not None:
        paginator.count = count  # a cached_property: the known value replaces the query
    return paginator.get_page(request.GET.get("page"))


# --- panels other apps fill in -------------------------------------------------------


def contribute(panel: str, contributor: ContextContributor) -> None:
    """Add ``contributor`` to the context of ``panel`` (idempotent; call from ``ready()``)."""
    registered = _contributors.setdefault(panel, [])
    if contributor not in registered:
        registered.append(contributor)


def contributions(panel: str, request: HttpRequest, **objects: Any) -> dict[str, Any]:
    """The context every contributor of ``panel`` adds, given the page's ``objects``."""
    context: dict[str, Any] = {}
    for contributor in _contributors.get(panel, ()):
        context.update(contributor(request, **objects))
    return context


# --- human words for audit events ------------------------------------------------------


def register_object_page(object_type: str, url_name: str) -> None:
    """Link audit events about ``object_type`` (``app.model``) to ``url_name`` (one ``pk`` argument)."""
    _object_pages[object_type] = url_name


def object_page(object_type: str, object_id: str) -> str | None:
    """The UI page of an audited object, or None when its app registered none."""
    url_name = _object_pages.get(object_type)
    if url_name is None or not str(object_id).isdigit():
        return None
    from django.urls import reverse

    return reverse(url_name, args=[int(object_id)])


def register_action_labels(labels: dict[str, str]) -> None:
    """Words for audit actions (``allocation.allocate`` → ``allocated``); call from ``ready()``."""
    _action_labels.update(labels)


def action_label(action: str) -> str:
    """The registered words for ``action``, else the action made readable (``job.retry`` → ``job retry``)."""
    return _action_labels.get(action) or action.replace(".", " ").replace("_", " ")
