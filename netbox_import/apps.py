from django.apps import AppConfig


class NetboxImportConfig(AppConfig):
    """The NetBox migration path: read NetBox's REST API or CSV export, plan, load (no models)."""

    name = "netbox_import"
    verbose_name = "Import from NetBox"
