"""Settings for the test suite: the real settings plus a fixed key and a fast password hasher."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # tests only: speed over strength
SECURE_SSL_REDIRECT = False  # the test client speaks plain HTTP
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405 - no collectstatic manifest in tests
# The emulators (moto, Neutron, the fault proxy) listen on loopback: allowed in tests only.
PROVIDER_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.0/8", "::1/128", "localhost"]
# A request's outbox dispatch in the server thread, at the end of the request: tests see its effect
# when the test client returns (tests/events/test_outbox.py covers the background dispatcher).
OUTBOX_DISPATCH_IN_BACKGROUND = False
