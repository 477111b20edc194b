"""Serializers of the provisioning API. Credentials appear only as their reference."""

from __future__ import annotations

from rest_framework import serializers

from allocations.choices import Provider
from ipam_portal.api.serializers import StrictSerializer

from ..choices import SHOOT_ACTIONS, AccountType, JobAction
from ..models import JobStep, ProviderAccount, ProvisioningJob, ReconcileFinding

CREDENTIALS_HELP = "env:VARIABLE or file:/absolute/path naming a JSON object, or none; never the secret"


class AccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProviderAccount
        fields = [
            "id",
            "name",
            "type",
            "provider",
            "region",
            "endpoint",
            "credentials_ref",
            "options",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class AccountCreateSerializer(StrictSerializer):
    name = serializers.SlugField(max_length=64)
    type = serializers.ChoiceField(choices=AccountType.choices)
    provider = serializers.ChoiceField(choices=Provider.choices)
    region = serializers.CharField(max_length=64)
    endpoint = serializers.CharField(max_length=255, required=False, allow_blank=True)
    credentials_ref = serializers.CharField(max_length=255, required=False, help_text=CREDENTIALS_HELP)
    options = serializers.DictField(required=False)
    enabled = serializers.BooleanField(required=False)


class AccountUpdateSerializer(StrictSerializer):
    region = serializers.CharField(max_length=64, required=False)
    endpoint = serializers.CharField(max_length=255, required=False, allow_blank=True)
    credentials_ref = serializers.CharField(max_length=255, required=False, help_text=CREDENTIALS_HELP)
    options = serializers.DictField(required=False)
    enabled = serializers.BooleanField(required=False)


class JobStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobStep
        fields = [
            "position",
            "name",
            "description",
            "state",
            "detail",
            "resources",
            "error",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    shoot_name = serializers.SerializerMethodField()
    account_name = serializers.CharField(source="account.name", read_only=True)
    steps = JobStepSerializer(many=True, read_only=True)

    class Meta:
        model = ProvisioningJob
        fields = [
            "id",
            "action",
            "state",
            "shoot",
            "shoot_name",
            "account",
            "account_name",
            "attempts",
            "max_attempts",
            "last_error",
            "result",
            "created_by",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
            "steps",
        ]
        read_only_fields = fields

    def get_shoot_name(self, job: ProvisioningJob) -> str | None:
        return str(job.shoot) if job.shoot_id else None


class JobStartSerializer(StrictSerializer):
    """Nothing to send: the shoot and its account decide everything."""


class PlannedStepSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    details = serializers.DictField()


class PlanQuerySerializer(StrictSerializer):
    strict_types = False
    action = serializers.ChoiceField(
        choices=[(a.value, a.label) for a in SHOOT_ACTIONS], default=JobAction.PROVISION
    )


class FindingSerializer(serializers.ModelSerializer):
    account_name = serializers.CharField(source="account.name", read_only=True)

    class Meta:
        model = ReconcileFinding
        fields = [
            "id",
            "job",
            "account",
            "account_name",
            "status",
            "kind",
            "resource_id",
            "name",
            "cidr",
            "shoot_identity",
            "allocation",
            "detail",
            "imported_allocation",
            "created_at",
        ]
        read_only_fields = fields
