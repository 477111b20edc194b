"""Writes of the provisioning domain: accounts, jobs, the job runner and reconcile.

The package is split by job: :mod:`.accounts` (provider accounts), :mod:`.jobs`
(creating, cancelling, retrying and reaping jobs; the one state transition),
:mod:`.runner` (one attempt of a job under a lease) and :mod:`.reconcile` (cloud
ranges against the portal, importing unmanaged ones). The names below are what
the rest of the portal calls; import them from ``providers.services``.
"""

from .accounts import ACCOUNT_UPDATABLE, account_create, account_delete, account_update
from .jobs import job_cancel, job_create, job_retry, jobs_reap, shoot_job
from .reconcile import finding_import, reconcile_all
from .runner import job_run, run_eagerly

__all__ = [
    "ACCOUNT_UPDATABLE",
    "account_create",
    "account_delete",
    "account_update",
    "finding_import",
    "job_cancel",
    "job_create",
    "job_retry",
    "job_run",
    "jobs_reap",
    "reconcile_all",
    "run_eagerly",
    "shoot_job",
]
