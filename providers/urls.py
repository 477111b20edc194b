"""URLs of provisioning in the web UI (namespace ``providers``): jobs, accounts, findings."""

from django.urls import path

from . import views

app_name = "providers"

urlpatterns = [
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<int:pk>/", views.job_detail, name="job-detail"),
    path("jobs/<int:pk>/progress/", views.job_progress, name="job-progress"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job-retry"),
    path("shoots/<int:pk>/jobs/<slug:action>/", views.shoot_job_start, name="shoot-job-start"),
    path("provider-accounts/", views.account_list, name="account-list"),
    path("provider-accounts/new/", views.account_create, name="account-create"),
    path("provider-accounts/<int:pk>/edit/", views.account_edit, name="account-edit"),
    path("provider-accounts/<int:pk>/reconcile/", views.account_reconcile, name="account-reconcile"),
    path("reconcile-findings/", views.finding_list, name="finding-list"),
    path("reconcile-findings/<int:pk>/import/", views.finding_import, name="finding-import"),
]
