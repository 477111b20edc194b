"""Provisioning API: accounts, jobs (start, cancel, retry, steps) and reconcile findings.

Views parse, call one service, render; the runner and every rule live in
:mod:`providers.services`.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from allocations.api.serializers import AllocationSerializer
from allocations.models import Shoot
from ipam_portal.api.base import ApiViewSet, request_actor
from ipam_portal.api.base import validated as _validated
from ipam_portal.api.etag import ETagMixin, etag_of

from .. import selectors, services
from ..choices import SHOOT_ACTIONS, JobAction
from ..models import ProviderAccount, ReconcileFinding
from . import serializers as s
from .filters import AccountFilterSet, FindingFilterSet, JobFilterSet


class AccountViewSet(ETagMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Provider accounts (admins write; everyone with a role reads). Credentials by reference only."""

    queryset = ProviderAccount.objects.order_by("name")
    serializer_class = s.AccountSerializer
    filterset_class = AccountFilterSet
    ordering_fields = ["name", "provider", "region", "created_at"]

    @extend_schema(request=s.AccountCreateSerializer, responses={201: s.AccountSerializer})
    def create(self, request: Request) -> Response:
        data = _validated(s.AccountCreateSerializer, request.data)
        account = services.account_create(actor=request_actor(request), **data)
        return Response(s.AccountSerializer(account).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.AccountUpdateSerializer, responses={200: s.AccountSerializer})
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change endpoint, credential reference, options, region or enabled; honours ``If-Match``."""
        account = self.get_object()
        self.check_if_match(request, account)
        data = _validated(s.AccountUpdateSerializer, request.data)
        account = services.account_update(account=account, actor=request_actor(request), **data)
        body = s.AccountSerializer(account).data
        return Response(body, headers={"ETag": etag_of(body)})

    @extend_schema(request=s.AccountUpdateSerializer, responses={200: s.AccountSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, **kwargs)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.account_delete(account=self.get_object(), actor=request_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.JobStartSerializer, responses={202: s.JobSerializer})
    @action(detail=True, methods=["post"])
    def reconcile(self, request: Request, pk: str | None = None) -> Response:
        """Start a reconcile: compare every range in the cloud with the portal."""
        _validated(s.JobStartSerializer, request.data or {})
        job = services.job_create(
            action=JobAction.RECONCILE, account=self.get_object(), actor=request_actor(request)
        )
        return Response(s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Provisioning jobs with their steps; cancel and retry (operators for their projects)."""

    queryset = selectors.job_list().prefetch_related("steps").order_by("-created_at", "-id")
    serializer_class = s.JobSerializer
    filterset_class = JobFilterSet
    ordering_fields = ["created_at", "state", "action"]
    write_scope = "project"

    @extend_schema(request=s.JobStartSerializer, responses={200: s.JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel a pending or running job (a running one stops before its next step)."""
        _validated(s.JobStartSerializer, request.data or {})
        job = services.job_cancel(job=self.get_object(), actor=request_actor(request))
        return Response(s.JobSerializer(job).data)

    @extend_schema(request=s.JobStartSerializer, responses={202: s.JobSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        """Run a failed or cancelled job again with a fresh budget of attempts."""
        _validated(s.JobStartSerializer, request.data or {})
        job = services.job_retry(job=self.get_object(), actor=request_actor(request))
        return Response(s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ShootJobViewSet(ApiViewSet):
    """``shoots/{id}/provision|deprovision|sync-routes/`` start a job; ``plan/`` previews one."""

    queryset = Shoot.objects.all()
    serializer_class = s.JobSerializer
    pagination_class = None
    lookup_value_regex = r"[0-9]+"
    write_scope = "project"

    def _shoot(self, pk: str | None) -> Shoot:
        shoot = get_object_or_404(Shoot, pk=pk)
        self.check_object_permissions(self.request, shoot)
        return shoot

    def _start(self, request: Request, pk: str | None, action_name: str) -> Response:
        _validated(s.JobStartSerializer, request.data or {})
        job = services.job_create(action=action_name, shoot=self._shoot(pk), actor=request_actor(request))
        return Response(s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.JobStartSerializer, responses={202: s.JobSerializer})
    @action(detail=True, methods=["post"])
    def provision(self, request: Request, pk: str | None = None) -> Response:
        """Create (or complete) the shoot's networks in its account's cloud."""
        return self._start(request, pk, JobAction.PROVISION)

    @extend_schema(request=s.JobStartSerializer, responses={202: s.JobSerializer})
    @action(detail=True, methods=["post"])
    def deprovision(self, request: Request, pk: str | None = None) -> Response:
        """Delete what provisioning created for the shoot, and nothing else."""
        return self._start(request, pk, JobAction.DEPROVISION)

    @extend_schema(request=s.JobStartSerializer, responses={202: s.JobSerializer})
    @action(detail=True, methods=["post"], url_path="sync-routes")
    def sync_routes(self, request: Request, pk: str | None = None) -> Response:
        """Make the router's node routes match the registered nodes."""
        return self._start(request, pk, JobAction.SYNC_ROUTES)

    @extend_schema(
        parameters=[OpenApiParameter("action", str, enum=[a.value for a in SHOOT_ACTIONS])],
        responses={200: s.PlannedStepSerializer(many=True)},
    )
    @action(detail=True, methods=["get"])
    def plan(self, request: Request, pk: str | None = None) -> Response:
        """The steps a job would take for the shoot; no cloud call is made."""
        query = _validated(s.PlanQuerySerializer, request.query_params.dict())
        steps = selectors.adapter_plan(shoot=get_object_or_404(Shoot, pk=pk), action=query["action"])
        return Response(
            [{"name": p.name, "description": p.description, "details": dict(p.details)} for p in steps]
        )


class FindingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """What reconcile found per cloud range; ``import/`` records an unmanaged one (admins)."""

    queryset = ReconcileFinding.objects.select_related("account").order_by("-job_id", "status", "cidr")
    serializer_class = s.FindingSerializer
    filterset_class = FindingFilterSet
    ordering_fields = ["created_at", "status", "cidr"]

    @extend_schema(request=s.JobStartSerializer, responses={201: AllocationSerializer})
    @action(detail=True, methods=["post"], url_path="import")
    def import_(self, request: Request, pk: str | None = None) -> Response:
        """Record an unmanaged cloud range as an allocation in the most specific pool holding it."""
        _validated(s.JobStartSerializer, request.data or {})
        allocation = services.finding_import(finding=self.get_object(), actor=request_actor(request))
        return Response(AllocationSerializer(allocation).data, status=status.HTTP_201_CREATED)
