"""Settings for qcdash.

Every value that differs between a laptop and a server comes from the environment (see
`.env.example`). The defaults run a fresh clone on SQLite with DEBUG on.
"""

from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# QCDASH_ENV_FILE names another settings file; variables already in the environment win.
environ.Env.read_env(env.str("QCDASH_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

# --- Core -----------------------------------------------------------------------------------

DEBUG = env.bool("DEBUG", default=True)

SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if DEBUG:
    # A development key only; with DEBUG off a missing SECRET_KEY stops start-up below.
    SECRET_KEY = SECRET_KEY or "insecure-development-key-never-use-in-production"
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "testserver"]
else:
    if not SECRET_KEY:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off, set SECRET_KEY in the environment "
            "to a long random string, for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS is not set. With DEBUG off, set ALLOWED_HOSTS to the comma-separated "
            "host names this server answers to, for example `qc.example.org`."
        )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "csp",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.gitlab",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.orcid",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_q",
    "accounts",
    "notifications",
    "studies",
    "qc",
    "redcap",
    "integrations",
    "pipelines",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
]

MIDDLEWARE = [
    "qcdash.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.RequireAdminMFAMiddleware",
]

ROOT_URLCONF = "qcdash.urls"
WSGI_APPLICATION = "qcdash.wsgi.application"

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

# --- Database -------------------------------------------------------------------------------

# SQLite in the project folder unless DATABASE_URL names another database, e.g.
# postgres://postgres@127.0.0.1:5432/qcdash
if not DEBUG and not env.str("DATABASE_URL", default=""):
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. With DEBUG off, name the database explicitly, for example "
        "postgres://qcdash@127.0.0.1:5432/qcdash (or sqlite:////srv/qcdash/db.sqlite3)."
    )
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a writer instead of failing with "database is locked" when the web process and
    # the background worker write at the same time. IMMEDIATE takes the write lock when a
    # transaction starts; a deferred transaction that later needs to write fails at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # PostgreSQL JIT-compiles a query whose estimated cost passes jit_above_cost, and the
    # QC-state subqueries of the reviewer pages pass it at a few thousand sessions. Compiling
    # took 40-230 ms per query in docs/benchmarks.md, several times the query's own run time.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c jit=off".strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
# One backend: allauth's email sign-in that loads only active users into sessions, so a
# deactivated user's sessions end at their next request (accounts/backends.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.AuthenticationBackend"]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "qc:study_list"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
# The account-request fields (institution, position, studies, reason) on both sign-up forms.
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.AccountRequestSignupForm"
# An empty value counts as unset, so a .env copied from .env.example keeps the default.
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="") or (
    "optional" if DEBUG else "mandatory"
)
if ACCOUNT_EMAIL_VERIFICATION not in ("none", "optional", "mandatory"):
    raise ImproperlyConfigured(
        f"ACCOUNT_EMAIL_VERIFICATION is {ACCOUNT_EMAIL_VERIFICATION!r}; set it to none, optional "
        f"or mandatory."
    )
ACCOUNT_ALLOW_REGISTRATION = env.bool("ACCOUNT_ALLOW_REGISTRATION", default=True)
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[qcdash] "
# Attempts per client IP address ("ip") and per email address ("key"). allauth 65 keeps the
# counts in Django's cache, so with the default per-process memory cache each server process
# counts on its own.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "10/h/ip",
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
}

SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False


def _oauth_app(provider, client_id, secret):
    """Return the allauth APPS entry of a provider, or None when neither value is set."""
    if not client_id and not secret:
        return None
    if not client_id or not secret:
        prefix = provider.upper()
        raise ImproperlyConfigured(
            f"{prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET must be set together; set both to "
            f"switch {provider} sign-in on, or neither to switch it off."
        )
    return {"client_id": client_id, "secret": secret, "key": ""}


# Each OAuth provider is on when its client id and secret are set here, or when a dashboard
# admin adds a Social application for it in the admin site. Without either, its button is hidden.
SOCIALACCOUNT_PROVIDERS = {
    "github": {"SCOPE": ["user:email"]},
    "gitlab": {"SCOPE": ["read_user"]},
    "google": {"SCOPE": ["profile", "email"], "AUTH_PARAMS": {"access_type": "online"}},
    "orcid": {
        "BASE_DOMAIN": env.str("ORCID_BASE_DOMAIN", default="") or "orcid.org",
        "MEMBER_API": False,
    },
    "openid_connect": {},
}
_PROVIDER_APPS = {
    "github": _oauth_app(
        "github",
        env.str("GITHUB_CLIENT_ID", default=""),
        env.str("GITHUB_CLIENT_SECRET", default=""),
    ),
    "gitlab": _oauth_app(
        "gitlab",
        env.str("GITLAB_CLIENT_ID", default=""),
        env.str("GITLAB_CLIENT_SECRET", default=""),
    ),
    "google": _oauth_app(
        "google",
        env.str("GOOGLE_CLIENT_ID", default=""),
        env.str("GOOGLE_CLIENT_SECRET", default=""),
    ),
    "orcid": _oauth_app(
        "orcid",
        env.str("ORCID_CLIENT_ID", default=""),
        env.str("ORCID_CLIENT_SECRET", default=""),
    ),
    "openid_connect": _oauth_app(
        "oidc",
        env.str("OIDC_CLIENT_ID", default=""),
        env.str("OIDC_CLIENT_SECRET", default=""),
    ),
}
if _PROVIDER_APPS["gitlab"]:
    _PROVIDER_APPS["gitlab"]["settings"] = {
        "gitlab_url": env.str("GITLAB_URL", default="") or "https://gitlab.com"
    }
if _PROVIDER_APPS["openid_connect"]:
    OIDC_SERVER_URL = env.str("OIDC_SERVER_URL", default="")
    if not OIDC_SERVER_URL:
        raise ImproperlyConfigured(
            "OIDC_SERVER_URL is not set. Set it to the issuer URL of the OpenID Connect provider "
            "(the address before /.well-known/openid-configuration), for example "
            "https://login.example.org/realms/lab."
        )
    _PROVIDER_APPS["openid_connect"].update(
        provider_id="oidc",
        name=env.str("OIDC_NAME", default="") or "OpenID Connect",
        settings={"server_url": OIDC_SERVER_URL},
    )
for _provider, _app in _PROVIDER_APPS.items():
    if _app:
        SOCIALACCOUNT_PROVIDERS[_provider]["APPS"] = [_app]

MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "qcdash"
# A dashboard admin without an authenticator app is sent to set one up before any other page.
MFA_REQUIRED_FOR_DASHBOARD_ADMINS = (
    env.bool("MFA_REQUIRED_FOR_DASHBOARD_ADMINS")
    if env.str("MFA_REQUIRED_FOR_DASHBOARD_ADMINS", default="")
    else not DEBUG
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Security -------------------------------------------------------------------------------

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Content Security Policy: scripts, styles and images come from this server only. Pages carry
# no inline scripts or style attributes; htmx's injected indicator style is switched off in
# base.html for the same reason. Images may be data: or blob: URLs drawn by page scripts.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Background jobs ------------------------------------------------------------------------

Q_CLUSTER = {
    "name": "qcdash",
    "orm": "default",
    "workers": env.int("Q_WORKERS", default=2),
    # A task gets `timeout` seconds. A task not acknowledged after `retry` seconds is handed
    # out again, so retry must be longer than timeout or a slow task runs twice.
    "timeout": 300,
    "retry": 360,
    "max_attempts": 3,
    "catch_up": False,
}

# --- REDCap ---------------------------------------------------------------------------------

# Seconds to wait for REDCap on each API request before the fetch counts as failed.
REDCAP_TIMEOUT = env.float("REDCAP_TIMEOUT", default=10.0)
# Attempts to fetch a triggered record while REDCap is down or slow; then it is marked failed.
REDCAP_MAX_ATTEMPTS = env.int("REDCAP_MAX_ATTEMPTS", default=5)
# Seconds before the first retry; each further retry waits twice as long. The django-q2
# scheduler looks for due retries about every 30 seconds (django-q2 1.11), so a retry may start
# up to that much later.
REDCAP_RETRY_DELAY = env.int("REDCAP_RETRY_DELAY", default=60)

# --- XNAT and issue tracker ----------------------------------------------------------------

# Seconds to wait for XNAT on each request of a QC push before the attempt counts as failed.
XNAT_TIMEOUT = env.float("XNAT_TIMEOUT", default=10.0)
# Attempts to push a QC decision while XNAT is down or slow; then the push is marked failed.
XNAT_MAX_ATTEMPTS = env.int("XNAT_MAX_ATTEMPTS", default=5)
# Seconds before the first retry of a push; each further retry waits twice as long.
XNAT_RETRY_DELAY = env.int("XNAT_RETRY_DELAY", default=60)
# Seconds to wait for GitHub or GitLab on each request. The new-issue form waits this long
# per request before it shows the error to the reviewer, so keep it short.
ISSUE_TRACKER_TIMEOUT = env.float("ISSUE_TRACKER_TIMEOUT", default=5.0)
# Minutes after which a timepoint's stored issue list is refreshed when its page is opened.
ISSUE_TRACKER_REFRESH_MINUTES = env.int("ISSUE_TRACKER_REFRESH_MINUTES", default=15)

# --- Download jobs --------------------------------------------------------------------------

# Hours after a REDCap survey reports a session as scanned during which the study site's
# download command is retried hourly. After that, the staff contacts are emailed that no data
# arrived.
DOWNLOAD_WINDOW_HOURS = env.int("DOWNLOAD_WINDOW_HOURS", default=72)
# Seconds a download or post-download command may run before it is killed. It must stay below
# the worker's task timeout (Q_CLUSTER "timeout", 300) minus a minute, so a longer download
# should submit a cluster job and return.
DOWNLOAD_COMMAND_TIMEOUT = env.int("DOWNLOAD_COMMAND_TIMEOUT", default=180)
if not 0 < DOWNLOAD_COMMAND_TIMEOUT <= Q_CLUSTER["timeout"] - 60:
    raise ImproperlyConfigured(
        f"DOWNLOAD_COMMAND_TIMEOUT is {DOWNLOAD_COMMAND_TIMEOUT}; set it to between 1 and "
        f"{Q_CLUSTER['timeout'] - 60} seconds, below the background worker's task timeout."
    )

# --- API ------------------------------------------------------------------------------------

# The JSON API for pipelines (api/). Pipeline accounts send `Authorization: Token <token>` with a
# token a dashboard admin created in the admin site; people signed in to the site may use their
# session. Every request acts with the permissions of the token's user.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.IsActiveUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "qcdash API",
    "DESCRIPTION": "QC decisions, sessions and scans of qcdash, for datman and other pipelines.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Swagger UI is served from drf-spectacular-sidecar's static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
# Username of the account that `set_qc` and `import_legacy_qc` record decisions as when no
# --user is given (datman's DASHBOARD_USER). Empty: those commands require --user.
QCDASH_PIPELINE_USER = env.str("QCDASH_PIPELINE_USER", default="")

# --- Email ----------------------------------------------------------------------------------

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="qcdash@localhost")
# Folder for the messages of django.core.mail.backends.filebased.EmailBackend (one file per
# connection); only read when EMAIL_BACKEND is that backend.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default="")
# The address people open qcdash at, without a trailing slash; links in emails start with it.
SITE_URL = env.str("SITE_URL", default="http://localhost:8000").rstrip("/")
# Attempts to send one notification email (the first and the retries) before it stays failed.
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=3)

# --- Files ----------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Front-end packages come from the npm registry (package-lock.json) and are served by the app,
# never from a CDN, because labs run qcdash on closed networks.
STATICFILES_DIRS = [
    ("vendor/bootstrap", BASE_DIR / "node_modules" / "bootstrap" / "dist"),
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/niivue", BASE_DIR / "node_modules" / "@niivue" / "niivue" / "dist"),
    BASE_DIR / "static",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Folder that holds the study archives. A study's archive is ARCHIVE_ROOT/<ProjectDir> unless
# sync_config read an absolute DatmanProjectsDir from datman's config.
ARCHIVE_ROOT = Path(env.str("ARCHIVE_ROOT", default=str(BASE_DIR / "demo" / "archive")))
# When set (e.g. /protected-archive/), archive files under ARCHIVE_ROOT are sent by nginx through
# X-Accel-Redirect after the permission check, instead of streaming through a gunicorn worker.
ARCHIVE_ACCEL_REDIRECT_PREFIX = env.str("ARCHIVE_ACCEL_REDIRECT_PREFIX", default="")
# Folder where corrected copies of scan sidecars are written, mirroring the archive's paths.
# Empty: sidecar repair is off. The original sidecars in the archive are never changed.
SIDECAR_REPAIR_ROOT = env.str("SIDECAR_REPAIR_ROOT", default="")
# Each repair stores the path it wrote, and `purge --files` removes those paths. A relative root
# would be read from each process's working directory, so the two could point at other folders.
if SIDECAR_REPAIR_ROOT and not Path(SIDECAR_REPAIR_ROOT).is_absolute():
    raise ImproperlyConfigured(
        f"SIDECAR_REPAIR_ROOT is {SIDECAR_REPAIR_ROOT!r}, a relative path. Set it to an absolute "
        f"path, for example /archive/sidecar-repairs, or leave it empty to turn repair off."
    )

# --- Front end ------------------------------------------------------------------------------

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Internationalisation -------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Logging --------------------------------------------------------------------------------

# LOG_FORMAT=plain writes readable lines; json writes one JSON object per line for collectors.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT is {LOG_FORMAT!r}; set it to plain or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "qcdash.request_id.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s %(message)s"},
        "json": {"()": "qcdash.log_format.JsonLinesFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
