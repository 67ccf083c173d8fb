"""Settings, every one read from the environment (or a `.env` file) through django-environ.

The defaults give the embedded setup: SQLite in the project folder, local-memory cache,
built-in offline models. docs/configuration.md lists every variable.
"""

from pathlib import Path

import environ

from config.secret_key import load_or_create

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or load_or_create(BASE_DIR / ".secret_key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS (docs/production.md) -------------------------------------------------------------
# Off by default so that `make run` works over plain http on localhost; on in production.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# "<header>,<value>" a TLS-terminating proxy sets, e.g. "X-Forwarded-Proto,https". Only set
# it behind such a proxy (one that strips the header from clients): it tells Django the
# request came over https.
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        raise ValueError('SECURE_PROXY_SSL_HEADER must be "<header>,<value>", e.g. "X-Forwarded-Proto,https".')
    _header = _proxy_ssl_header[0].strip().upper().replace("-", "_")
    SECURE_PROXY_SSL_HEADER = (_header if _header.startswith("HTTP_") else f"HTTP_{_header}", _proxy_ssl_header[1].strip())

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "keys",
    "chat",
    "datasets",  # before django_tasks_db: its `db_worker` command replaces that app's
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ChunkedBodyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# --- database -----------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
    # two writers queue on the busy timeout instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": env.str("SQLITE_TEST_NAME", default="") or None}
else:
    # Under ASGI each request runs its sync work in a thread of its own, so connections are
    # not kept per thread (CONN_MAX_AGE=0) but borrowed from psycopg's pool for each step.
    # Our backend (config/postgres) is Django's with a pool that checks each connection it
    # lends (one empty round trip) and replaces dead ones, so a PostgreSQL restart or
    # failover fails no request on a stale pooled connection.
    DATABASES["default"]["ENGINE"] = "config.postgres"
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10),
    }
    # The chat turn's statements are prepared on their connections (chat/completions/
    # turn_store.py); off for a pooler that cannot keep prepared statements (docs/production.md).
    if not env.bool("DB_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache (rate limits) ------------------------------------------------------------------
# Local memory is one process's own: right for `make run`. Several processes must share the
# rate-limit counters: redis://… (or memcached) counts in the cache, dbcache://<table> in the
# database (keys/throttling.py); `manage.py serve --workers N` picks dbcache when unset.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# --- i18n, static -------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "static")
# The ASGI app serves /static/ itself (admin and Swagger assets) unless a web server does.
SERVE_STATIC = env.bool("SERVE_STATIC", default=True)

# Request bodies: chat messages may carry long contexts (FastGPT allows 20 MB).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=20 * 1024 * 1024)

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["keys.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["keys.permissions.IsGlobalKey"],
    "DEFAULT_THROTTLE_CLASSES": ["keys.throttling.ApiKeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["config.renderers.JSONRenderer"],  # DRF's, encoding with orjson
    "DEFAULT_PARSER_CLASSES": ["config.json_input.StrictJSONParser"],
    "DEFAULT_METADATA_CLASS": "config.metadata.EnvelopeMetadata",
    "EXCEPTION_HANDLER": "config.exception_handler.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.schema.EnvelopeAutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "FastGPT-compatible OpenAPI",
    "DESCRIPTION": "FastGPT's OpenAPI served by Django: send `Authorization: Bearer fastgpt-…`.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "chat.completions.openapi.add_chat_completions",
    ],
}

# Per-key request rate, "<n>/<second|minute|hour|day>"; empty disables the limit.
API_KEY_RATE = env.str("API_KEY_RATE", default="600/minute")
# last_used_at is written at most once per this many seconds per key.
API_KEY_LAST_USED_RESOLUTION = env.int("API_KEY_LAST_USED_RESOLUTION", default=60)
# Rotation: how long the old key keeps working unless --now is given.
API_KEY_ROTATION_GRACE_HOURS = env.float("API_KEY_ROTATION_GRACE_HOURS", default=24)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # httpx logs every provider request at INFO: too much for production logs.
    "loggers": {"django.server": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}

# --- models (see providers/registry.py) -----------------------------------------------------
AI_MODELS = env.str("AI_MODELS", default="")
AI_MODELS_FILE = env.str("AI_MODELS_FILE", default="")
DEFAULT_LLM_MODEL = env.str("DEFAULT_LLM_MODEL", default="")
DEFAULT_EMBEDDING_MODEL = env.str("DEFAULT_EMBEDDING_MODEL", default="")

# --- model providers (providers/) ---------------------------------------------------------------
PROVIDER_CONNECT_TIMEOUT = env.float("PROVIDER_CONNECT_TIMEOUT", default=10)
PROVIDER_MAX_CONNECTIONS = env.int("PROVIDER_MAX_CONNECTIONS", default=2000)
PROVIDER_MAX_KEEPALIVE = env.int("PROVIDER_MAX_KEEPALIVE", default=100)
# A comment line is sent on a stream silent for this many seconds, so proxies keep it open.
STREAM_KEEPALIVE_SECONDS = env.float("STREAM_KEEPALIVE_SECONDS", default=15)
# The server process's young-generation threshold for Python's garbage collector (0: Python's
# default, 700); see config/garbage_collection.py.
GC_GEN0_THRESHOLD = env.int("GC_GEN0_THRESHOLD", default=50_000)

# --- background tasks (datasets/tasks.py) [STORE] -------------------------------------------
# Django's Tasks API (the django-tasks backport). The database backend queues tasks in the
# database; `manage.py db_worker` processes run them (make run starts one beside the server).
TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}
# Training: data items per claim (256: ~25 % less CPU per item than 64 with the built-in embedding
# on PostgreSQL, docs/benchmarks.md; an HTTP provider still gets 64 texts a call), retries of a
# failed batch (with exponential backoff from TRAINING_RETRY_BASE_SECONDS), and how long a claim
# lasts before another worker may take it.
TRAINING_BATCH_SIZE = env.int("TRAINING_BATCH_SIZE", default=256)
TRAINING_MAX_ATTEMPTS = env.int("TRAINING_MAX_ATTEMPTS", default=5)
TRAINING_RETRY_BASE_SECONDS = env.float("TRAINING_RETRY_BASE_SECONDS", default=10)
TRAINING_CLAIM_SECONDS = env.float("TRAINING_CLAIM_SECONDS", default=600)
# A task trains at most this many batches, then queues its continuation (a worker's shutdown
# waits for one task); a large push queues up to TRAINING_PARALLEL_TASKS tasks for the workers.
TRAINING_TASK_MAX_BATCHES = env.int("TRAINING_TASK_MAX_BATCHES", default=16)
TRAINING_PARALLEL_TASKS = env.int("TRAINING_PARALLEL_TASKS", default=4)
# Embedding HTTP calls: retries on 429/5xx/connection errors within one training attempt.
EMBEDDING_HTTP_RETRIES = env.int("EMBEDDING_HTTP_RETRIES", default=2)
EMBEDDING_HTTP_BACKOFF_SECONDS = env.float("EMBEDDING_HTTP_BACKOFF_SECONDS", default=1)
# Vector search: "pgvector" or "numpy" (default: pgvector on PostgreSQL, numpy elsewhere), and
# the NumPy backend's per-process cache size.
DATASET_VECTOR_BACKEND = env.str("DATASET_VECTOR_BACKEND", default="")
VECTOR_CACHE_MAX_BYTES = env.int("VECTOR_CACHE_MAX_BYTES", default=1024 * 1024 * 1024)
# pgvector: a dataset gets its own HNSW index once it holds VECTOR_INDEX_MIN_ROWS vectors and
# no vector of it has changed for VECTOR_INDEX_QUIET_SECONDS (a bulk load is stored unindexed,
# then the index is built in one pass: 4-5x less database CPU than inserting each vector into
# the graph); smaller datasets are searched exactly. The build may use this much memory
# (the graph must fit, ~1.5 KB per 512-dimension vector; PostgreSQL's default is 64MB).
VECTOR_INDEX_MIN_ROWS = env.int("VECTOR_INDEX_MIN_ROWS", default=2000)
VECTOR_INDEX_QUIET_SECONDS = env.float("VECTOR_INDEX_QUIET_SECONDS", default=5)
VECTOR_INDEX_BUILD_MEMORY = env.str("VECTOR_INDEX_BUILD_MEMORY", default="1GB")

# --- knowledge-base uploads and links (datasets/views/collections.py) [API] -------------------
# collection/create/localFile: larger files are refused with 413.
DATASET_MAX_FILE_BYTES = env.int("DATASET_MAX_FILE_BYTES", default=50 * 1024 * 1024)
# Link collections may fetch private/loopback addresses (intranet deployments only; SSRF risk).
LINK_FETCH_ALLOW_PRIVATE = env.bool("LINK_FETCH_ALLOW_PRIVATE", default=False)
# collection/create/text: texts up to this many characters are chunked in the request (the
# answer counts the chunks); longer ones by the background task (the call answers at once).
DATASET_INLINE_TEXT_CHARS = env.int("DATASET_INLINE_TEXT_CHARS", default=100_000)
# A source read by the worker with the built-in embedding is embedded as it is inserted (written
# once, ready) when it has at most this many chunks — by default one training batch, which one
# worker would train alone anyway; a larger one goes through training, whose batches several
# workers share (faster on PostgreSQL, docs/benchmarks.md) and whose progress trainingAmount shows.
DATASET_READ_EMBED_MAX_CHUNKS = env.int("DATASET_READ_EMBED_MAX_CHUNKS", default=TRAINING_BATCH_SIZE)
