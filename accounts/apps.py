from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Who may do what: roles, Gardener project membership and hashed API tokens."""

    name = "accounts"

    def ready(self) -> None:
        from . import schema, signals  # noqa: F401 - register the OpenAPI scheme and the login audit
