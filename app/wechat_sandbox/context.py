"""The per-app sandbox object (config, state, platform keys, notifier) and how views reach it."""

from flask import current_app

from . import keys as platform_keys
from .notify import Notifier
from .state import SandboxState, load_merchants

EXTENSION = "wechat_sandbox"


class Sandbox:
    def __init__(self, config):
        self.config = config
        self.state = SandboxState()
        self.keys = platform_keys.load_or_create(config["SANDBOX_STATE_DIR"])
        load_merchants(self.state, config["SANDBOX_STATE_DIR"])
        self.notifier = Notifier(self.state, self.keys)

    @property
    def appid(self):
        return self.config["SANDBOX_APPID"]


def current():
    return current_app.extensions[EXTENSION]
