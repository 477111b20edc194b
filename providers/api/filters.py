"""django-filter FilterSets of the provisioning API (lists in the API and the UI)."""

from __future__ import annotations

import django_filters

from ..choices import AccountType, FindingStatus, JobAction, JobState
from ..models import ProviderAccount, ProvisioningJob, ReconcileFinding


class AccountFilterSet(django_filters.FilterSet):
    type = django_filters.ChoiceFilter(choices=AccountType.choices)

    class Meta:
        model = ProviderAccount
        fields = ["type", "provider", "region", "enabled"]


class JobFilterSet(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=JobState.choices)
    action = django_filters.ChoiceFilter(choices=JobAction.choices)
    project = django_filters.CharFilter(field_name="shoot__project")
    account = django_filters.ModelChoiceFilter(queryset=ProviderAccount.objects.all())

    class Meta:
        model = ProvisioningJob
        fields = ["state", "action", "shoot", "account", "project"]


class FindingFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=FindingStatus.choices)
    account = django_filters.ModelChoiceFilter(queryset=ProviderAccount.objects.all())

    class Meta:
        model = ReconcileFinding
        fields = ["status", "account", "job", "kind"]
