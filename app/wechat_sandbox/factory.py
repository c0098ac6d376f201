"""create_sandbox_app: the fake WeChat as its own Flask (WSGI) app."""

from flask import Flask

from . import control, miniprogram, v2_pay, v3_pay, v3_transfer
from .config import load_config
from .context import EXTENSION, Sandbox


def create_sandbox_app(config=None):
    settings = load_config(config)
    app = Flask(__name__)
    app.config.update(settings)
    app.json.ensure_ascii = False
    app.extensions[EXTENSION] = Sandbox(settings)
    for module in (miniprogram, v3_pay, v3_transfer, v2_pay, control):
        app.register_blueprint(module.bp)
    return app
