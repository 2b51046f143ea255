"""Settings for the CPO platform. Every value comes from the environment (see .env.example)."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# bin/demo generates a key per install in var/ (not in git): manage.py commands run in another
# shell against the demo (README walkthrough) use it too, so they can read the tokens it stored.
_DEMO_SECRET_KEY = VAR_DIR / "demo-secret-key"
SECRET_KEY = env(
    "SECRET_KEY",
    default=_DEMO_SECRET_KEY.read_text().strip()
    if _DEMO_SECRET_KEY.exists()
    else ("insecure-dev-key-change-me" if DEBUG else None),
)
if not SECRET_KEY:
    # Outside DEBUG there is no default secret: refuse to start rather than run insecurely.
    raise environ.ImproperlyConfigured("Set SECRET_KEY (or DEBUG=true for a local demo).")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "stations",
    "billing",
    "ocpi",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ocpi.middleware.OCPIRequestMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cpo_platform.urls"
WSGI_APPLICATION = "cpo_platform.wsgi.application"
# OCPI paths accept both ".../locations" and ".../locations/" themselves; a redirect would
# break POST/PUT from partners (PROTOCOL.md §10.8).
APPEND_SLASH = False

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

# SQLite under var/ needs no server for the demo; PostgreSQL (psycopg 3) is the production
# and CI database: DATABASE_URL=postgres://user:pass@host:5432/name
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'cpo.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file-backed test database, so a Celery worker process started by the tests sees it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_cpo.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 30)
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["ocpi.auth.CredentialsTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["ocpi.auth.IsRegisteredPartner"],
    "DEFAULT_RENDERER_CLASSES": ["ocpi.envelope.OCPIJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["ocpi.parsers.OCPIJSONParser"],
    "EXCEPTION_HANDLER": "ocpi.exceptions.ocpi_exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Per partner (or per client IP without a valid token): OCPI_RATE_LIMIT, ocpi.throttling.
    "DEFAULT_THROTTLE_CLASSES": ["ocpi.throttling.PartnerRateThrottle"],
    # Proxies in front of us that append to X-Forwarded-For (0: use REMOTE_ADDR, which a client
    # cannot forge); the client IP keys the rate limit of callers without a valid token.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}

# --- Cache ------------------------------------------------------------------------------------
# Holds the rate limit counters. Redis (CACHE_URL=redis://127.0.0.1:6379/1) shares them across
# gunicorn workers and hosts; without it, each process counts on its own (demo).
CACHE_URL = env("CACHE_URL", default="") or env("REDIS_URL", default="")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "cpo",
            # Short socket timeouts: an unreachable Redis lets requests through quickly.
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Largest request body read into memory; an OCPI request over it is answered HTTP 413 with an
# OCPI 2001 envelope (ocpi.middleware). 1 MiB holds the largest Location PUT many times over.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)

# --- Celery -----------------------------------------------------------------------------------
# Default: kombu's filesystem transport under var/, so the demo needs no broker server.
# Production and CI: redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672//
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(env("CELERY_FILESYSTEM_DIR", default=str(VAR_DIR / "broker")))
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "data_folder_processed": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        # The worker looks for a new message this often (kombu's default is every second, one
        # message a look: a burst of pushes would trickle out one a second).
        "polling_interval": env.float("CELERY_FILESYSTEM_POLL_SECONDS", default=0.05),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# The queue tasks go to (and workers read with -Q); tests give each worker its own.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_BEAT_SCHEDULE = {
    "sweep-outbox": {
        "task": "ocpi.tasks.sweep_outbox_task",
        "schedule": env.float("OUTBOX_SWEEP_SECONDS", default=30.0),
    },
    "simulator-tick": {
        "task": "stations.tasks.simulator_tick_task",
        "schedule": env.float("SIMULATOR_TICK_SECONDS", default=5.0),
    },
    "sync-tokens": {
        "task": "ocpi.tasks.sync_tokens_task",
        "schedule": env.float("TOKEN_SYNC_SECONDS", default=6 * 3600.0),
    },
    "expire-commands": {
        "task": "ocpi.tasks.expire_commands_task",
        "schedule": 15.0,
    },
    "purge-traffic-log": {
        "task": "ocpi.traffic.purge_traffic_log_task",
        "schedule": 3600.0,
    },
    "reconcile-cdrs": {
        "task": "ocpi.tasks.reconcile_cdrs_task",
        "schedule": env.float("RECONCILE_SECONDS", default=24 * 3600.0),
    },
}

# --- OCPI -------------------------------------------------------------------------------------
# The public base URL advertised to partners (versions URL = OCPI_BASE_URL + /ocpi/versions).
OCPI_BASE_URL = env("OCPI_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# The CPO's own OCPI identity. OCPI_EXTRA_ROLES adds further CPO roles hosted on this platform
# (2.2.1 allows several), as "CC:PID:Business name" separated by ";".
OCPI_COUNTRY_CODE = env("OCPI_COUNTRY_CODE", default="NL")
OCPI_PARTY_ID = env("OCPI_PARTY_ID", default="CPO")
OCPI_BUSINESS_NAME = env("OCPI_BUSINESS_NAME", default="Open CPO Platform")
OCPI_BUSINESS_WEBSITE = env("OCPI_BUSINESS_WEBSITE", default="")
OCPI_EXTRA_ROLES = env("OCPI_EXTRA_ROLES", default="")
# Largest page a partner may ask for; smaller requests are honoured.
OCPI_MAX_PAGE_SIZE = env.int("OCPI_MAX_PAGE_SIZE", default=100)
# Timeout (seconds) for outbound calls when a partner's profile does not set one.
OCPI_DEFAULT_TIMEOUT = env.float("OCPI_DEFAULT_TIMEOUT", default=30.0)
# Key for encrypting tokens we present to partners (must be recoverable). Defaults to one
# derived from SECRET_KEY; set a separate one in production.
OCPI_TOKEN_ENCRYPTION_KEY = env("OCPI_TOKEN_ENCRYPTION_KEY", default="")
# Outbox retry backoff: base seconds, doubled per attempt, capped.
OUTBOX_BACKOFF_BASE = env.float("OUTBOX_BACKOFF_BASE", default=5.0)
OUTBOX_BACKOFF_MAX = env.float("OUTBOX_BACKOFF_MAX", default=3600.0)
# Requests per partner (or per client IP without a valid token): "600/minute", "20/second"...
# Empty: no limit. Over it: HTTP 429 with Retry-After, in the OCPI envelope (ocpi.throttling).
OCPI_RATE_LIMIT = env("OCPI_RATE_LIMIT", default="600/minute")
# The OCPI traffic log (ocpi.traffic): on/off, days kept (0: forever; purged hourly by beat),
# and the bytes of each request/response body kept (the rest is cut; the size is recorded).
TRAFFIC_LOG_ENABLED = env.bool("TRAFFIC_LOG_ENABLED", default=True)
TRAFFIC_LOG_DAYS = env.int("TRAFFIC_LOG_DAYS", default=30)
TRAFFIC_LOG_BODY_BYTES = env.int("TRAFFIC_LOG_BODY_BYTES", default=16384)
# CDR reconciliation (ocpi.reconciliation): delivered CDRs fetched back per partner and run.
RECONCILE_SAMPLE = env.int("RECONCILE_SAMPLE", default=20)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Credentials tokens never reach a log line (Authorization headers, Credentials objects).
    "filters": {"redact_tokens": {"()": "ocpi.redact.RedactTokensFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}

# --- Charging (gateway, simulator, sessions) --------------------------------------------------
# The charger gateway: the built-in simulator, or an OCPP central system implementing
# stations.gateway.ChargerGateway.
CHARGER_GATEWAY = env("CHARGER_GATEWAY", default="stations.simulator.SimulatorGateway")
# The simulator's time scale: 60 runs a simulated charge 60 times faster than real time.
SIMULATOR_TIME_SCALE = env.float("SIMULATOR_TIME_SCALE", default=1.0)
# Seconds the simulator takes to answer a command (before scaling), and how often it ticks.
SIMULATOR_RESPONSE_SECONDS = env.float("SIMULATOR_RESPONSE_SECONDS", default=1.0)
SIMULATOR_TICK_SECONDS = env.float("SIMULATOR_TICK_SECONDS", default=5.0)
# Seed of the simulated vehicles (battery size, state of charge), for repeatable demos.
SIMULATOR_SEED = env.int("SIMULATOR_SEED", default=0)
# Minimum seconds between two session PATCHes to a partner while a session runs.
SESSION_PATCH_INTERVAL = env.float("SESSION_PATCH_INTERVAL", default=60.0)
# The timeout we announce in CommandResponse (seconds), and the real-time authorization timeout.
OCPI_COMMAND_TIMEOUT = env.int("OCPI_COMMAND_TIMEOUT", default=30)
OCPI_AUTHORIZE_TIMEOUT = env.float("OCPI_AUTHORIZE_TIMEOUT", default=5.0)
# Token sync from partners' tokens senders (seconds between runs).
TOKEN_SYNC_SECONDS = env.float("TOKEN_SYNC_SECONDS", default=6 * 3600)
