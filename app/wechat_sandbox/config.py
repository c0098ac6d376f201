"""Sandbox configuration: defaults, overridable by env vars of the same name or an explicit dict."""

DEFAULTS = {
    "SANDBOX_APPID": "wx5a4d0b1c2e3f4a5b",
    "SANDBOX_APP_SECRET": "sandbox-app-secret",
    "SANDBOX_STATE_DIR": "instance/wechat_sandbox",
    "SANDBOX_SEED": "fenxiao-sandbox",
}

# How long issued access tokens live, as on WeChat.
TOKEN_TTL_SECONDS = 7200
# Timeout for every notification POST, as WeChat's own 5 s budget.
NOTIFY_TIMEOUT_SECONDS = 5


def load_config(overrides=None, environ=None):
    """Defaults < environment (only when given: the process entry point passes os.environ) <
    explicit overrides."""
    config = dict(DEFAULTS)
    for key in DEFAULTS:
        if environ and environ.get(key):
            config[key] = environ[key]
    config.update(overrides or {})
    return config
