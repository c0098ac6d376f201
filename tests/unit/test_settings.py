import re
from pathlib import Path

import pytest

from config.settings import SettingsError, load_settings

PRODUCTION = {
    "FENXIAO_ENV": "production",
    "DATABASE_URL": "postgresql://fenxiao@db.internal/fenxiao",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "SECRET_KEY": "k" * 48,
    "WECHAT_APPID": "wx0123456789abcdef",
    "WECHAT_SECRET": "a-real-secret-from-the-mp-console",
    "PUBLIC_BASE_URL": "https://fx.example.com",
}


def test_development_defaults_are_embedded_and_local():
    settings = load_settings({"INSTANCE_DIR": "/tmp/fx-instance"})
    assert settings.env == "development"
    assert settings.database_url == "sqlite:////tmp/fx-instance/fenxiao.db"
    assert settings.redis_url is None  # the embedded redis-server
    assert settings.wechat_api_base_url == "https://api.weixin.qq.com"
    assert settings.wechatpay_api_base_url == "https://api.mch.weixin.qq.com"


def test_production_with_every_secret_starts():
    settings = load_settings(PRODUCTION)
    assert settings.is_production
    assert settings.database_url == "postgresql+psycopg://fenxiao@db.internal/fenxiao"


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "WECHAT_SECRET",
                                     "PUBLIC_BASE_URL"])
def test_production_refuses_to_start_without(missing):
    environ = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(SettingsError, match="refusing to start in production"):
        load_settings(environ)


@pytest.mark.parametrize("override", [
    {"DATABASE_URL": "sqlite:///prod.db"},
    {"SECRET_KEY": "short"},
    {"WECHAT_API_BASE_URL": "http://127.0.0.1:8001"},
    {"WECHATPAY_API_BASE_URL": "http://localhost:8001"},
    {"PUBLIC_BASE_URL": "http://127.0.0.1:8000"},
])
def test_production_refuses_embedded_defaults(override):
    with pytest.raises(SettingsError):
        load_settings({**PRODUCTION, **override})


def test_unknown_environment_is_refused():
    with pytest.raises(SettingsError, match="FENXIAO_ENV"):
        load_settings({"FENXIAO_ENV": "staging"})


@pytest.mark.parametrize("name,value", [("TOKEN_TTL_SECONDS", "ten"),
                                        ("WECHAT_API_BASE_URL", "ftp://x")])
def test_malformed_values_are_refused_with_their_name(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})


# The launcher hands its environment on to the processes it starts, and the sandbox stands in
# for WeChat, outside the app; neither reads the app's configuration from it.
ENVIRONMENT_PASSERS = {"app/launcher.py"}


def test_settings_are_read_only_in_settings_module():
    """Convention 7: nothing but config/settings.py reads os.environ."""
    root = Path(__file__).resolve().parents[2]
    offenders = [str(path.relative_to(root)) for path in (root / "app").rglob("*.py")
                 if "os.environ" in path.read_text() and "wechat_sandbox" not in path.parts
                 and str(path.relative_to(root)) not in ENVIRONMENT_PASSERS]
    assert offenders == []


def test_limits_have_defaults_generous_enough_for_real_traffic():
    settings = load_settings({"INSTANCE_DIR": "/tmp/fx-instance"})
    assert settings.max_content_length == 1024 * 1024
    assert settings.db_statement_timeout_ms == 5000
    assert settings.db_job_statement_timeout_ms == 0  # jobs and exports: no timeout
    assert settings.share_visit_rate_limit_ip == "300/minute"
    assert settings.share_visit_rate_limit_user == "60/minute"
    assert settings.withdrawal_rate_limit_member == "30/minute"


def test_limits_are_read_from_the_environment():
    settings = load_settings({
        "MAX_CONTENT_LENGTH": "65536", "DB_STATEMENT_TIMEOUT_MS": "250",
        "DB_JOB_STATEMENT_TIMEOUT_MS": "600000", "SHARE_VISIT_RATE_LIMIT_IP": "5/second",
        "SHARE_VISIT_RATE_LIMIT_USER": "20/minute;200/day",
        "WITHDRAWAL_RATE_LIMIT_MEMBER": "3/minute", "LOGIN_RATE_LIMIT_IP": "100/hour",
    })
    assert (settings.max_content_length, settings.db_statement_timeout_ms,
            settings.db_job_statement_timeout_ms) == (65536, 250, 600000)
    assert (settings.share_visit_rate_limit_ip, settings.share_visit_rate_limit_user,
            settings.withdrawal_rate_limit_member, settings.login_rate_limit_ip) == (
        "5/second", "20/minute;200/day", "3/minute", "100/hour")


@pytest.mark.parametrize("name,value", [
    ("SHARE_VISIT_RATE_LIMIT_IP", "lots"),
    ("SHARE_VISIT_RATE_LIMIT_USER", "10/fortnight"),
    ("WITHDRAWAL_RATE_LIMIT_MEMBER", "ten per minute"),
    ("LOGIN_RATE_LIMIT_OPENID", "10-minute"),
    ("MAX_CONTENT_LENGTH", "0"),
    ("MAX_CONTENT_LENGTH", "1MB"),
    ("DB_STATEMENT_TIMEOUT_MS", "-1"),
    ("DB_JOB_STATEMENT_TIMEOUT_MS", "5s"),
])
def test_malformed_limits_stop_the_start_with_their_name(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})


def test_example_env_lists_every_variable_settings_reads():
    root = Path(__file__).resolve().parents[2]
    source = (root / "config" / "settings.py").read_text()
    read = set(re.findall(r'(?:env\.get|_\w+)\((?:env, )?"([A-Z][A-Z0-9_]+)"', source))
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (root / "config" / "example.env")
                            .read_text(), re.MULTILINE))
    assert read and read - listed == set()
