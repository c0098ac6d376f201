"""HTTP only: each blueprint parses with a schema, calls one service, serializes."""

from __future__ import annotations

from flask import Flask, request, send_from_directory
from flask_smorest import Api
from werkzeug.routing import IntegerConverter

from app.api.json_fields import MAX_ID
from app.errors import InvalidInput, NotFound


def register(app: Flask, api: Api) -> None:
    from app.api import health
    from app.api import landing as share_landing
    from app.api.admin import merchants as admin_merchants
    from app.api.console import auth as console_auth
    from app.api.console import commission_plans as console_commission_plans
    from app.api.console import distributors as console_distributors
    from app.api.console import exports as console_exports
    from app.api.console import levels as console_levels
    from app.api.console import orders as console_orders
    from app.api.console import payment_settings as console_payment_settings
    from app.api.console import products as console_products
    from app.api.console import risk as console_risk
    from app.api.console import settings as console_settings
    from app.api.console import staff as console_staff
    from app.api.console import stats as console_stats
    from app.api.console import withdrawals as console_withdrawals
    from app.api.mp import auth as mp_auth
    from app.api.mp import catalogue as mp_catalogue
    from app.api.mp import me as mp_me
    from app.api.mp import orders as mp_orders
    from app.api.mp import programs as mp_programs
    from app.api.mp import share_links as mp_share_links
    from app.api.mp import share_visits as mp_share_visits
    from app.api.mp import wallet as mp_wallet
    from app.api.mp import withdrawals as mp_withdrawals
    from app.api.webhooks import wechatpay as wechatpay_webhooks

    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    app.url_map.converters["int"] = IdConverter  # before any route that takes an id
    blueprints = (health.blp, mp_auth.blp, mp_me.blp, mp_programs.blp, mp_share_visits.blp,
                      mp_share_links.blp, mp_wallet.blp, mp_catalogue.blp, share_landing.blp,
                      console_auth.blp, console_settings.blp, console_distributors.blp,
                      console_staff.blp, console_commission_plans.blp, console_products.blp,
                      console_orders.blp, console_payment_settings.blp, mp_orders.blp,
                      console_withdrawals.blp, mp_withdrawals.blp, wechatpay_webhooks.blp,
                      console_levels.blp, console_stats.blp, console_risk.blp,
                      console_exports.blp, admin_merchants.blp)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    _refuse_unstorable_text(app, {blueprint.name for blueprint in blueprints})
    _serve_swagger_ui_assets(app)


class IdConverter(IntegerConverter):
    """Flask's ``int`` up to PostgreSQL's BIGINT: a larger id names no row, so its URL matches
    no route (404) instead of failing in the database; the document states the maximum."""

    def __init__(self, map, *args, **kwargs):  # noqa: A002 - werkzeug's parameter name
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def _refuse_unstorable_text(app: Flask, blueprint_names: set[str]) -> None:
    """PostgreSQL text holds no NUL character and no unpaired surrogate, so no name, reason or
    token may carry one: such a request is refused before any view runs (422 naming the
    field; 404 for a path segment, which can name nothing that exists) rather than failing
    in the database with a 500."""

    @app.before_request
    def refuse_unstorable_text():
        if request.blueprint in blueprint_names:
            refuse_unstorable(request)


def refuse_unstorable(req) -> None:
    """Raise for a request carrying text PostgreSQL cannot store: ``NotFound`` for a path
    segment, ``InvalidInput`` naming the query, form or JSON fields (the console's pages call
    this too, for their forms)."""
    if any(_unstorable(str(value)) for value in (req.view_args or {}).values()):
        raise NotFound()
    fields = {name for source in (req.args, req.form)
              for name, value in source.items(multi=True)
              if _unstorable(name) or _unstorable(value)}
    if req.is_json:
        fields.update(_unstorable_fields(req.get_json(silent=True), "body"))
    if fields:
        raise InvalidInput(errors={name: ["NUL and unpaired surrogate characters are "
                                          "not allowed."] for name in sorted(fields)})


def _unstorable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return "\x00" in text


def _unstorable_fields(value, path: str):
    """Where in a JSON body the unstorable text is: ``address.detail``, ``items.0.title``."""
    if isinstance(value, str):
        if _unstorable(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            name = key if path == "body" else f"{path}.{key}"
            if _unstorable(key):
                yield name
            yield from _unstorable_fields(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable_fields(item, f"{path}.{index}")


def _serve_swagger_ui_assets(app: Flask) -> None:
    import swagger_ui_bundle

    @app.get("/api/docs/assets/<path:filename>")
    def swagger_ui_asset(filename):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)
