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
