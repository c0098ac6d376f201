"""Extension objects, created unbound here and bound to the app in ``create_app``."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from app.api.error_views import ErrorOut
from app.database import Base
from app.errors import error_response_for_http
from app.integrations.redis_client import RedisHolder


class FenxiaoApi(Api):
    """flask-smorest's Api, answering every HTTP error in the one error shape, and documenting
    that shape (not flask-smorest's own) as every operation's error response."""

    ERROR_SCHEMA = ErrorOut

    def handle_http_exception(self, error):
        return error_response_for_http(error)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = FenxiaoApi()
redis = RedisHolder()
# ProxyFix (configured from TRUSTED_PROXIES) has already put the real client into remote_addr,
# so an X-Forwarded-For that no trusted proxy wrote cannot dodge a per-IP limit. Storage is set
# from settings in create_app; limits are declared on the views that need them.
limiter = Limiter(key_func=get_remote_address, headers_enabled=True)
