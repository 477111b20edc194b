"""Settings of the IPAM portal. Every value comes from an environment variable.

The README's configuration table lists each variable with its default; keep the
two in step. Defaults give the embedded mode: SQLite next to manage.py and
Celery tasks executed in-process, so nothing else has to run.
"""

import datetime as dt
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: expected true or false")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected a whole number") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and os.environ.get("IPAM_ALLOW_INSECURE_KEY") != "1":
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105 - dev only
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# HTTPS. With DEBUG off the portal assumes it is served over HTTPS only (usually a
# TLS-terminating proxy: set SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO there).
# /healthz and /metrics are probed over plain HTTP from inside, so never redirected.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"], "https")
# Preloading is decided for a whole registered domain by its owners, not by one app on it.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from our static files: /api/docs/ works offline
    "csp",
    "django_prometheus",
    "axes",
    "ipam_portal.events",
    "ipam_portal.beat",
    "accounts",
    "audit",
    "allocations",
    "providers",
    "admission",
    "controllers",
    "notifications",
    "netbox_import",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "ipam_portal.middleware.DatabaseUnavailableMiddleware",  # a database away answers 503 + Retry-After
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files with DEBUG off, no web server needed
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # answers a locked-out login with 429
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "ipam_portal.urls"
WSGI_APPLICATION = "ipam_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # {% load ipam %}: readable numbers and wrapping IPv6 (the kernel is no app)
            "libraries": {"ipam": "ipam_portal.templatetags.ipam"},
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take SQLite's write lock at BEGIN, so concurrent writers
    # queue (up to the timeout) instead of failing with "database is locked" mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("SQLITE_TEST_NAME") or None}
elif env_bool("DB_POOLER_TRANSACTION_MODE", False):
    # PgBouncer (or another pooler) in transaction mode hands each transaction to any server
    # connection: no server-side cursors (Django's .iterator()) and no prepared statements.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
# Django checks a kept connection before reusing it, so one broken by a failover is replaced.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("DB_CONN_HEALTH_CHECKS", True)

# The cache holds API throttling counters: give every web process the same one in
# production (e.g. CACHE_URL=redis://127.0.0.1:6379/1); the default is per process.
CACHE_URL = os.environ.get("CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Brute force on the login forms (UI and admin): django-axes counts failures and locks out.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before the password check
    "django.contrib.auth.backends.ModelBackend",
]
# Wrong passwords before a lock-out, how long it lasts, and what is locked, comma-separated:
# "username" (the account, from every address), "ip_address" (one address guessing many
# names), or combinations such as "username+ip_address"; the default locks both ways.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(seconds=env_int("LOGIN_COOLOFF_SECONDS", 900))
AXES_LOCKOUT_PARAMETERS = [
    item.split("+") for item in env_list("LOGIN_LOCKOUT_PARAMETERS", "username,ip_address")
]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no start-up banner on the commands' stderr; failures and lock-outs are audited
# Invalid API tokens: after this many from one address within the window, 429 until it ends.
API_TOKEN_FAILURE_LIMIT = env_int("API_TOKEN_FAILURE_LIMIT", 20)
API_TOKEN_FAILURE_WINDOW_SECONDS = env_int("API_TOKEN_FAILURE_WINDOW_SECONDS", 300)

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT", str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # hashed names (cache forever) and pre-compressed copies, made by collectstatic
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# The web UI's own login page; the admin keeps its own. Every UI page requires login.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "ui:dashboard"
LOGOUT_REDIRECT_URL = "login"
STATICFILES_DIRS = [BASE_DIR / "ipam_portal" / "static"]  # the UI's stylesheet (ipam_portal is no app)

# REST API (Django REST Framework). Token clients are throttled so one runaway
# script cannot starve everyone; browsers use the session.
API_THROTTLE_TOKEN_RATE = os.environ.get("API_THROTTLE_TOKEN_RATE", "6000/min")
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 50)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["ipam_portal.api.permissions.RolePermission"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "ipam_portal.api.filters.StrictOrderingFilter",
    ],
    "DEFAULT_PARSER_CLASSES": ["ipam_portal.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "ipam_portal.api.pagination.Pagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    "DEFAULT_SCHEMA_CLASS": "ipam_portal.api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "ipam_portal.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["ipam_portal.api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": API_THROTTLE_TOKEN_RATE},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Idempotency-Key records are kept (and replayed) this long, then purged by Celery beat.
API_IDEMPOTENCY_TTL_SECONDS = env_int("API_IDEMPOTENCY_TTL_SECONDS", 24 * 3600)
# An unfinished claim older than this belongs to a request that was cut off before its commit.
API_IDEMPOTENCY_STALE_SECONDS = env_int("API_IDEMPOTENCY_STALE_SECONDS", 120)
# Retry-After of the 503 a request gets while the database is away (failover, restart).
DB_UNAVAILABLE_RETRY_AFTER = env_int("DB_UNAVAILABLE_RETRY_AFTER", 2)
SPECTACULAR_SETTINGS = {
    "TITLE": "Dual-stack IPAM portal API",
    "DESCRIPTION": "Pools, allocations, seeds, shoots, nodes and audit events for Gardener dual-stack networks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # one schema name for the providers, however a field holding them is named
    "ENUM_NAME_OVERRIDES": {"ProviderEnum": "allocations.choices.Provider"},
}

# Content-Security-Policy: scripts only from our own static files (no inline code, no handlers in
# markup). Styles allow inline attributes: utilisation bars and the pool map set computed widths,
# heights and colours. IPAM_CSP_REPORT_ONLY=1 sends the policy as report-only while rolling it out.
_CSP = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
if env_bool("IPAM_CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP

# Celery: no broker configured means the embedded mode, tasks run in-process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis re-delivers an unacknowledged task (its worker died) after this many seconds;
# RabbitMQ does so as soon as the worker's connection drops.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Celery's Django fixup closes every database connection before and after each task, whatever
# CONN_MAX_AGE says (a new PostgreSQL backend per task), and only once per this many tasks when
# set: so it never does, and the worker treats connections around a task as Django does around a
# request instead (DB_CONN_MAX_AGE, DB_CONN_HEALTH_CHECKS; ipam_portal/celery.py).
CELERY_DB_REUSE_MAX = 2**31
# Several beat schedulers (replicas started with --beat) send each periodic task once:
# the portal's database decides which (ipam_portal/beat).
CELERY_BEAT_SCHEDULER = "ipam_portal.beat.scheduler:OncePerPeriodScheduler"
CELERY_BEAT_SCHEDULE = {
    "reclaim-expired-prefixes": {
        "task": "allocations.tasks.reclaim_expired",
        "schedule": env_int("IPAM_RECLAIM_INTERVAL_SECONDS", 300),
    },
    "lapse-admission-holds": {
        "task": "admission.tasks.lapse_holds",
        "schedule": env_int("IPAM_RECLAIM_INTERVAL_SECONDS", 300),
    },
    "reap-provisioning-jobs": {
        "task": "providers.tasks.reap_jobs",
        "schedule": env_int("PROVISIONING_REAP_INTERVAL_SECONDS", 60),
    },
    "reconcile-provider-accounts": {
        "task": "providers.tasks.reconcile_accounts",
        "schedule": env_int("PROVISIONING_RECONCILE_INTERVAL_SECONDS", 3600),
    },
    "purge-idempotency-records": {
        "task": "accounts.tasks.purge_idempotency_records",
        "schedule": env_int("API_IDEMPOTENCY_PURGE_INTERVAL_SECONDS", 3600),
    },
    "verify-audit-chain": {
        "task": "audit.tasks.verify_chain",
        "schedule": env_int("AUDIT_VERIFY_INTERVAL_SECONDS", 3600),
    },
    "deliver-outbox": {
        "task": "events.tasks.deliver_due",
        "schedule": env_int("OUTBOX_SWEEP_INTERVAL_SECONDS", 30),
    },
    "deliver-outbound-events": {
        "task": "notifications.tasks.deliver_due",
        "schedule": env_int("NOTIFICATIONS_SWEEP_INTERVAL_SECONDS", 30),
    },
}

# Domain events: the transactional outbox (durable subscribers, delivered at least once).
# Attempts per delivery before it is marked failed (visible in the admin, `manage.py ipam_outbox`).
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 8)
# Backoff before attempt n+1: uniform in [b·2^(n-1)/2, b·2^(n-1)] seconds, capped.
OUTBOX_BACKOFF_SECONDS = env_int("OUTBOX_BACKOFF_SECONDS", 5)
OUTBOX_BACKOFF_MAX_SECONDS = env_int("OUTBOX_BACKOFF_MAX_SECONDS", 300)
# A request's dispatch (after its response) is sent by a background thread of the web process,
# coalesced, so the server thread is free for the next request of the connection at once;
# false: sent by the server thread itself (what the test suite does, to stay synchronous).
OUTBOX_DISPATCH_IN_BACKGROUND = env_bool("OUTBOX_DISPATCH_IN_BACKGROUND", True)
# That thread sends at most one dispatch per this many milliseconds (the first after a quiet
# spell at once): the requests finishing meanwhile share it, their rows delivered in one pass.
OUTBOX_DISPATCH_INTERVAL_MS = env_int("OUTBOX_DISPATCH_INTERVAL_MS", 50)
# Rows a delivery pass hands to their subscribers in one transaction (one claim, one UPDATE).
OUTBOX_DELIVERY_BATCH = env_int("OUTBOX_DELIVERY_BATCH", 50)
# Delivered rows are kept this long (failed rows until retried or deleted by an admin).
OUTBOX_RETENTION_SECONDS = env_int("OUTBOX_RETENTION_SECONDS", 7 * 24 * 3600)

# Outbound events (docs/events.md): signed CloudEvents POSTed to subscriptions' target URLs.
# Attempts per delivery before it is marked failed (with its last answer) in the delivery log.
NOTIFICATIONS_MAX_ATTEMPTS = env_int("NOTIFICATIONS_MAX_ATTEMPTS", 8)
# Backoff before attempt n+1: uniform in [b·2^(n-1)/2, b·2^(n-1)] seconds, capped.
NOTIFICATIONS_BACKOFF_SECONDS = env_int("NOTIFICATIONS_BACKOFF_SECONDS", 10)
NOTIFICATIONS_BACKOFF_MAX_SECONDS = env_int("NOTIFICATIONS_BACKOFF_MAX_SECONDS", 600)
# Connect and read timeout of one attempt.
NOTIFICATIONS_TIMEOUT_SECONDS = env_int("NOTIFICATIONS_TIMEOUT_SECONDS", 10)
# The NetBox import (netbox_import.source): connect and read timeout of one page request.
NETBOX_TIMEOUT_SECONDS = env_int("NETBOX_TIMEOUT_SECONDS", 30)
# An attempt whose worker died is tried again after this long (at least twice the timeout).
NOTIFICATIONS_LEASE_SECONDS = env_int("NOTIFICATIONS_LEASE_SECONDS", 60)
# Delivered deliveries stay in the log this long (failed ones until retried or deleted).
NOTIFICATIONS_RETENTION_SECONDS = env_int("NOTIFICATIONS_RETENTION_SECONDS", 30 * 24 * 3600)
# The CloudEvents "source" attribute of every event the portal sends.
NOTIFICATIONS_EVENT_SOURCE = os.environ.get("NOTIFICATIONS_EVENT_SOURCE", "/ipam-portal")

# Provisioning jobs.
# Attempts per job before a transient provider error fails it.
PROVISIONING_MAX_ATTEMPTS = env_int("PROVISIONING_MAX_ATTEMPTS", 5)
# Backoff before attempt n+1: uniform in [b·2^(n-1)/2, b·2^(n-1)] seconds, capped.
PROVISIONING_BACKOFF_SECONDS = env_int("PROVISIONING_BACKOFF_SECONDS", 5)
PROVISIONING_BACKOFF_MAX_SECONDS = env_int("PROVISIONING_BACKOFF_MAX_SECONDS", 300)
# In embedded mode (no broker) a retry waits at most this long, in-process.
PROVISIONING_EAGER_BACKOFF_CAP_SECONDS = env_int("PROVISIONING_EAGER_BACKOFF_CAP_SECONDS", 2)
# A running job without a heartbeat for this long lost its worker and is picked up again.
PROVISIONING_STALE_SECONDS = env_int("PROVISIONING_STALE_SECONDS", 300)
# A job waiting for an earlier job of its shoot looks again after this many seconds.
PROVISIONING_DEFER_SECONDS = env_int("PROVISIONING_DEFER_SECONDS", 5)
# A sync-routes job starts this many seconds after it is created; every node registered or
# removed meanwhile joins it (100 nodes joining at once: one route sync). 0: at once.
PROVISIONING_SYNC_ROUTES_DELAY_SECONDS = env_int("PROVISIONING_SYNC_ROUTES_DELAY_SECONDS", 5)
# Soft time limit of one attempt (the hard limit is 30 s later).
PROVISIONING_TASK_SOFT_TIME_LIMIT = env_int("PROVISIONING_TASK_SOFT_TIME_LIMIT", 600)

# Shoot node controller (manage.py ipam_node_controller, docs/controllers.md).
# Where a shoot's kubeconfig is: a credential reference with {credentials_dir} (the
# PROVIDER_CREDENTIALS_DIR), {project} and {name}; never stored in the database.
SHOOT_KUBECONFIG_REF = os.environ.get(
    "SHOOT_KUBECONFIG_REF", "file:{credentials_dir}/shoots/{project}/{name}.kubeconfig"
)
NODE_CONTROLLER_HEALTH_PORT = env_int("NODE_CONTROLLER_HEALTH_PORT", 8081)
NODE_CONTROLLER_RESYNC_SECONDS = env_int("NODE_CONTROLLER_RESYNC_SECONDS", 30)
NODE_CONTROLLER_WATCH_TIMEOUT_SECONDS = env_int("NODE_CONTROLLER_WATCH_TIMEOUT_SECONDS", 300)

# Provider accounts: where the portal's signed requests and tokens may go. Host names,
# "*.suffix" patterns and networks (CIDR), comma-separated; checked when an account is saved
# and again (resolved) before connecting. Empty (the default): only the SDKs' own endpoints.
PROVIDER_ENDPOINT_ALLOWED_HOSTS = env_list("PROVIDER_ENDPOINT_ALLOWED_HOSTS", "")

# Provider accounts: the one directory file: credential references may point into (symlinks
# resolved, regular files only, at most PROVIDER_CREDENTIALS_MAX_BYTES); empty refuses them.
PROVIDER_CREDENTIALS_DIR = os.environ.get("PROVIDER_CREDENTIALS_DIR", "/etc/ipam-portal/credentials")
PROVIDER_CREDENTIALS_MAX_BYTES = env_int("PROVIDER_CREDENTIALS_MAX_BYTES", 64 * 1024)

# IPAM rules.
# How long a released prefix stays quarantined before it can be handed out again.
IPAM_QUARANTINE_SECONDS = env_int("IPAM_QUARANTINE_SECONDS", 24 * 3600)
# The longest quarantine an admin may choose on release (operators always get the default).
IPAM_QUARANTINE_MAX_SECONDS = env_int("IPAM_QUARANTINE_MAX_SECONDS", 30 * 24 * 3600)
# Sticky ranges: after its quarantine ended, a prefix freed this long ago goes back to a recreated
# shoot of the same project and name if it is still free (0: only while it is quarantined).
IPAM_STICKY_RETENTION_SECONDS = env_int("IPAM_STICKY_RETENTION_SECONDS", 0)
if IPAM_STICKY_RETENTION_SECONDS < 0:
    raise ImproperlyConfigured("IPAM_STICKY_RETENTION_SECONDS: expected 0 or more")
# What a project may take by hand (manual allocations and holds) from a global pool that sets no
# project_quota, as a share of the pool: no project takes a region by accident. 100: no limit.
IPAM_DEFAULT_PROJECT_QUOTA_PERCENT = env_int("IPAM_DEFAULT_PROJECT_QUOTA_PERCENT", 25)
if not 1 <= IPAM_DEFAULT_PROJECT_QUOTA_PERCENT <= 100:
    raise ImproperlyConfigured("IPAM_DEFAULT_PROJECT_QUOTA_PERCENT: expected 1 to 100")
if not 0 <= IPAM_QUARANTINE_SECONDS <= IPAM_QUARANTINE_MAX_SECONDS:
    raise ImproperlyConfigured("IPAM_QUARANTINE_SECONDS: expected 0 to IPAM_QUARANTINE_MAX_SECONDS")

# Audit trail. Key of the HMAC over signed checkpoints of the hash chain (ipam_audit_checkpoint);
# empty: no checkpoints. Keep it out of the database's reach (a secret store, not the DB host).
AUDIT_CHECKPOINT_KEY = os.environ.get("AUDIT_CHECKPOINT_KEY", "")
# ipam_audit_verify accepts an event this much older than the one before it (clocks of several
# web hosts); older is reported as backdated.
AUDIT_CLOCK_SKEW_SECONDS = env_int("AUDIT_CLOCK_SKEW_SECONDS", 5)

# Shoot admission webhook (admission/, docs/admission.md).
# Which namespaces are Gardener project namespaces ("{project}": one DNS label; "{namespace}":
# all). The portal's project is the namespace itself, as its Gardener import and export use
# it; a Shoot in any other namespace is allowed unchanged, with a warning.
ADMISSION_PROJECT_NAMESPACE_PATTERN = os.environ.get(
    "ADMISSION_PROJECT_NAMESPACE_PATTERN", "garden-{project}"
)
# How long ranges taken at admission are held until a garden controller sees the Shoot.
ADMISSION_HOLD_SECONDS = env_int("ADMISSION_HOLD_SECONDS", 3600)
# Hold admitted ranges until seen (only where a garden controller confirms shoots); without
# one the admission's allocation stands (DESIGN §9).
ADMISSION_HOLD_UNTIL_SEEN = env_bool("ADMISSION_HOLD_UNTIL_SEEN", False)
# Garden controller (controllers/, docs/controllers.md): the garden cluster's kubeconfig (empty:
# in-cluster config in a pod, else ~/.kube/config); how long one watch request runs before it is
# renewed; how often a standby tries to take the lead.
GARDEN_KUBECONFIG = os.environ.get("GARDEN_KUBECONFIG", "")
# the controllers' /healthz, /readyz, /metrics: "::" takes IPv6 and IPv4 (0.0.0.0 where no IPv6)
CONTROLLER_HEALTH_HOST = os.environ.get("CONTROLLER_HEALTH_HOST", "::")
CONTROLLER_WATCH_SECONDS = env_int("CONTROLLER_WATCH_SECONDS", 300)
CONTROLLER_ELECT_SECONDS = float(os.environ.get("CONTROLLER_ELECT_SECONDS", "5"))
# Client certificates (verified by gunicorn against its --ca-certs) whose subject CN may call
# the webhook; empty: only tokens with the admission scope.
ADMISSION_CLIENT_CERT_NAMES = env_list("ADMISSION_CLIENT_CERT_NAMES", "")

# Gardener manifest import: bounds on what one YAML/JSON text may expand to (400 beyond).
GARDENER_IMPORT_MAX_ALIASES = env_int("GARDENER_IMPORT_MAX_ALIASES", 100)
GARDENER_IMPORT_MAX_DOCUMENTS = env_int("GARDENER_IMPORT_MAX_DOCUMENTS", 1000)
GARDENER_IMPORT_MAX_DEPTH = env_int("GARDENER_IMPORT_MAX_DEPTH", 50)

# /metrics: who may scrape (addresses or networks), how often pool utilisation is recomputed.
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", "127.0.0.1,::1")
METRICS_POOL_CACHE_SECONDS = env_int("METRICS_POOL_CACHE_SECONDS", 15)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Django's default config gives "django" a console handler of its own; it propagates to
    # the root's as well, so every line was printed twice. One handler: the root's.
    "loggers": {"django": {"handlers": [], "propagate": True}},
}
