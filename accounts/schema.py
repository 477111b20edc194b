"""Tell drf-spectacular how API tokens are sent (shows up as a security scheme)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "ipam_<prefix>_<secret>, from POST /api/v1/tokens/",
        }
