"""``GET /api/v1/audit-events/verify/`` (admins): walk the audit hash chain, name the first break."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ipam_portal.api.permissions import AdminOnly as KernelAdminOnly

from ..selectors import chain_verify


class AdminOnly(KernelAdminOnly):
    message = "only admins can verify the audit chain"


class ChainProblemSerializer(serializers.Serializer):
    event_id = serializers.IntegerField(
        allow_null=True, help_text="Row id of the event (null: beyond the end)"
    )
    seq = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField(help_text="altered, removed, inserted, backdated or rewritten")
    reason = serializers.CharField()


class ChainReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    events = serializers.IntegerField(help_text="Events checked, in seq order, before the first problem")
    head_seq = serializers.IntegerField()
    head_hash = serializers.CharField()
    checkpoint_seq = serializers.IntegerField(allow_null=True)
    problem = ChainProblemSerializer(allow_null=True)


class AuditChainVerifyView(APIView):
    """Check the whole chain (altered, removed, inserted or backdated events); admins only."""

    permission_classes = [AdminOnly]

    @extend_schema(
        operation_id="audit_events_verify",
        responses={200: ChainReportSerializer},
        description="Walk the audit hash chain; `ok` is false and `problem` names the first event "
        "that breaks it. Checkpoints are checked with `manage.py ipam_audit_verify --checkpoint`.",
    )
    def get(self, request: Request) -> Response:
        if request.query_params:
            raise ValidationError({name: ["unknown parameter"] for name in request.query_params})
        return Response(ChainReportSerializer(chain_verify().as_dict()).data)
