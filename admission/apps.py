"""App config of the Shoot admission webhook (an integration: nothing in the domain imports it)."""

from django.apps import AppConfig


class AdmissionConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "admission"
    verbose_name = "Shoot admission webhook"
