"""SQLAlchemy models, one module per aggregate. Importing this package registers them all
(Alembic autogenerate and ``flask db check`` see the full metadata through it)."""

from app.models.user import User

__all__ = ["User"]
