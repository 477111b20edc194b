from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Who may do what: roles, Gardener project membership and hashed API tokens."""

    name = "accounts"

    def ready(self) -> None:
        from ipam_portal import access
        from ipam_portal.api import idempotency

        from . import roles, schema, signals  # noqa: F401 - register the OpenAPI scheme and the login audit
        from .models import IdempotencyRecord

        access.install(roles)  # the kernel's UI, API and admin bases ask accounts.roles
        idempotency.install(IdempotencyRecord)  # the kernel's Idempotency-Key mixin keeps its records here
