"""SQLAlchemy models, one module per aggregate. Importing this package registers them all
(Alembic autogenerate and ``flask db check`` see the full metadata through it)."""

from app.database import IdCounter
from app.models.member import BindingLog, Member, StatusLog, TeamDeltaRow
from app.models.merchant import Merchant, PlatformAdmin, StaffAccount
from app.models.product import Product
from app.models.share import ShareLink, ShareLinkImage, Visit
from app.models.user import User

__all__ = ["BindingLog", "IdCounter", "Member", "Merchant", "PlatformAdmin", "Product",
           "ShareLink", "ShareLinkImage", "StaffAccount", "StatusLog", "TeamDeltaRow", "User",
           "Visit"]
