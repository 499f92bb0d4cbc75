"""Settings, read from the environment once, frozen afterwards.

The embedded default needs no service: SQLite in the instance folder, with the rate-limit counts
in a second small SQLite file there (shared by the server's workers). Setting DATABASE_URL and
REDIS_URL moves the portal to PostgreSQL and Redis, so that several application servers can share
everything they must all see.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _normalise_db_url(url: str) -> str:
    # psycopg 3 is the driver we ship; accept the plain scheme DBAs write.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost. The receipt hash must be slow: it is the only key back to a tip."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 1


@dataclass(frozen=True)
class Settings:
    SECRET_KEY: str
    SQLALCHEMY_DATABASE_URI: str
    REDIS_URL: str | None = None
    # Where the limits count (see portal/web/ratelimit.py): from_environment() chooses Redis when
    # REDIS_URL is set, else the instance folder's counts file (RATELIMIT_STORAGE_URI, if set,
    # names another place, such as a counts file on tmpfs); memory counts per process.
    RATELIMIT_STORAGE_URI: str = "memory://"
    RATELIMIT_ENABLED: bool = True
    SUBMIT_RATE_LIMIT: str = "10 per hour;30 per day"
    FOLLOWUP_RATE_LIMIT: str = "20 per minute;200 per day"
    # POSTs to every staff sign-in door together, per address (an office behind one NAT included).
    STAFF_SIGNIN_RATE_LIMIT: str = "60 per minute;600 per hour"
    # Uploads: the issue asks for at least 10 files of 50 MB each by default.
    MAX_FILES: int = 10
    MAX_FILE_BYTES: int = 50 * MiB
    # Images, PDFs, Office files, videos and audio are cleaned in memory (never on disk);
    # anything larger is refused.
    MAX_CLEAN_BYTES: int = 64 * MiB
    # Pass-through kinds (text, legacy .doc/.xls/.ppt) may be larger than the cleaning cap.
    MAX_CONTENT_LENGTH: int = 10 * 50 * MiB + 4 * MiB
    # Text fields: Werkzeug keeps non-file form parts in memory.
    MAX_FORM_MEMORY_SIZE: int = 2 * MiB
    RECEIPT_ARGON2: Argon2Params = field(default_factory=Argon2Params)
    # Login hash: RFC 9106's low-memory profile (what argon2-cffi uses by default).
    LOGIN_ARGON2: Argon2Params = field(default_factory=Argon2Params)
    WRAP_ARGON2: Argon2Params = field(
        default_factory=lambda: Argon2Params(time_cost=4, memory_kib=128 * 1024, parallelism=2)
    )
    # How many reverse proxies set X-Forwarded-For in front of the portal (0: none).
    PROXY_COUNT: int = 0
    BABEL_DEFAULT_LOCALE: str = "zh_Hans"
    BABEL_DEFAULT_TIMEZONE: str = "Asia/Shanghai"
    LANGUAGES: tuple[str, ...] = ("zh_Hans", "ko", "en")
    WTF_CSRF_TIME_LIMIT: int | None = 4 * 3600
    # Flask-WTF's HTTPS check wants a Referer from the same host on every protected form, but the
    # portal's own Referrer-Policy (no-referrer) stops browsers sending one: behind TLS every staff
    # form would be refused. The CSRF token and SameSite=Lax cookies are the protection.
    WTF_CSRF_SSL_STRICT: bool = False
    SESSION_COOKIE_HTTPONLY: bool = True
    SESSION_COOKIE_SAMESITE: str = "Lax"
    SESSION_COOKIE_SECURE: bool = False
    TESTING: bool = False
    # The tamper-evident log: its origin line, and the Ed25519 signing key kept OUTSIDE the
    # database (default: the instance folder; put it on a separate volume in production).
    AUDIT_LOG_ORIGIN: str = "yanbian.sthjj/qingliu/audit-log"
    AUDIT_SIGNING_KEY_FILE: str = ""
    CASE_NUMBER_FORMAT: str = "延州环移〔{year}〕第{seq}号"
    # Staying up (portal/web/hashgate.py, portal/web/outage.py, portal/web/health.py). The receipt
    # hash is
    # the one expensive step of filing and following up: at most RECEIPT_HASH_SLOTS run at once in
    # each process, up to RECEIPT_HASH_QUEUE more wait at most RECEIPT_HASH_WAIT seconds, and
    # beyond that the request is answered 503 with Retry-After, having stored nothing.
    RECEIPT_HASH_SLOTS: int = 1
    RECEIPT_HASH_QUEUE: int = 16
    RECEIPT_HASH_WAIT: float = 10.0
    # Seconds a 503 (busy, database or Redis unreachable) tells the client to wait.
    RETRY_AFTER_SECONDS: int = 30
    # /readyz answers 503 below this much free space where the database and instance folder live.
    READY_MIN_FREE_MB: int = 1024
    # A failure that repeats (database unreachable, Redis down) is logged once per this many
    # seconds per kind, with how often it happened meanwhile.
    LOG_REPEAT_SECONDS: int = 60
    # Public pages that are the same for everyone (the home page) are kept in each process and
    # the database asked at most this often whether their data changed (portal/web/pagecache.py).
    PUBLIC_PAGE_RECHECK_SECONDS: float = 1.0

    def as_flask_config(self) -> dict[str, Any]:
        data = asdict(self)
        data["RECEIPT_ARGON2"] = self.RECEIPT_ARGON2
        data["WRAP_ARGON2"] = self.WRAP_ARGON2
        data["LOGIN_ARGON2"] = self.LOGIN_ARGON2
        return data


def _secret_key(instance_path: Path) -> str:
    """SECRET_KEY from the environment, else one generated once into the instance folder."""
    from_env = os.environ.get("SECRET_KEY")
    if from_env:
        return from_env
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(os.urandom(32).hex())
    return key_file.read_text().strip()


def _counts_file_uri(instance_path: Path) -> str:
    """The rate-limit counts file of the embedded default (portal/web/limitstore.py): apart from the
    database, shared by the workers of this server."""
    return f"qingliu-sqlite://{(instance_path / 'ratelimits.sqlite3').resolve()}"


def from_environment(instance_path: Path) -> Settings:
    """Build the settings for a deployment from its environment variables."""
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance_path / 'qingliu.sqlite3'}"
    redis_url = os.environ.get("REDIS_URL") or None
    max_file = _env_int("MAX_FILE_BYTES", 50 * MiB)
    max_files = _env_int("MAX_FILES", 10)
    return Settings(
        SECRET_KEY=_secret_key(instance_path),
        SQLALCHEMY_DATABASE_URI=_normalise_db_url(db_url),
        REDIS_URL=redis_url,
        RATELIMIT_STORAGE_URI=os.environ.get("RATELIMIT_STORAGE_URI") or redis_url
        or _counts_file_uri(instance_path),
        MAX_FILES=max_files,
        MAX_FILE_BYTES=max_file,
        MAX_CONTENT_LENGTH=max_files * max_file + 4 * MiB,
        PROXY_COUNT=_env_int("PROXY_COUNT", 0),
        SUBMIT_RATE_LIMIT=os.environ.get("SUBMIT_RATE_LIMIT") or Settings.SUBMIT_RATE_LIMIT,
        FOLLOWUP_RATE_LIMIT=os.environ.get("FOLLOWUP_RATE_LIMIT") or Settings.FOLLOWUP_RATE_LIMIT,
        STAFF_SIGNIN_RATE_LIMIT=os.environ.get("STAFF_SIGNIN_RATE_LIMIT")
        or Settings.STAFF_SIGNIN_RATE_LIMIT,
        SESSION_COOKIE_SECURE=os.environ.get("SESSION_COOKIE_SECURE", "") == "1",
        AUDIT_SIGNING_KEY_FILE=os.environ.get("AUDIT_SIGNING_KEY_FILE")
        or str(instance_path / "audit-log.key"),
        AUDIT_LOG_ORIGIN=os.environ.get("AUDIT_LOG_ORIGIN") or Settings.AUDIT_LOG_ORIGIN,
        CASE_NUMBER_FORMAT=os.environ.get("CASE_NUMBER_FORMAT") or Settings.CASE_NUMBER_FORMAT,
        RECEIPT_HASH_SLOTS=_env_int("RECEIPT_HASH_SLOTS", Settings.RECEIPT_HASH_SLOTS),
        RECEIPT_HASH_QUEUE=_env_int("RECEIPT_HASH_QUEUE", Settings.RECEIPT_HASH_QUEUE),
        RECEIPT_HASH_WAIT=float(os.environ.get("RECEIPT_HASH_WAIT") or Settings.RECEIPT_HASH_WAIT),
        RETRY_AFTER_SECONDS=_env_int("RETRY_AFTER_SECONDS", Settings.RETRY_AFTER_SECONDS),
        READY_MIN_FREE_MB=_env_int("READY_MIN_FREE_MB", Settings.READY_MIN_FREE_MB),
        LOG_REPEAT_SECONDS=_env_int("LOG_REPEAT_SECONDS", Settings.LOG_REPEAT_SECONDS),
    )
