"""HTTP only: each blueprint parses with a schema, calls one service, serializes."""

from __future__ import annotations

from flask import Flask, send_from_directory
from flask_smorest import Api


def register(app: Flask, api: Api) -> None:
    from app.api import health
    from app.api.mp import auth as mp_auth
    from app.api.mp import me as mp_me

    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    for blueprint in (health.blp, mp_auth.blp, mp_me.blp):
        api.register_blueprint(blueprint)
    _serve_swagger_ui_assets(app)


def _serve_swagger_ui_assets(app: Flask) -> None:
    import swagger_ui_bundle

    @app.get("/api/docs/assets/<path:filename>")
    def swagger_ui_asset(filename):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)
