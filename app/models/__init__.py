"""SQLAlchemy models, one module per aggregate. Importing this package registers them all
(Alembic autogenerate and ``flask db check`` see the full metadata through it)."""

from app.database import IdCounter
from app.models.commission import Commission, CommissionPlanVersion, PeriodTotal, ProcessedRefund
from app.models.export import Export
from app.models.ledger import Journal, LedgerAccount, LedgerEntry, WalletHead, WalletOutbox
from app.models.level import Level, LevelChange
from app.models.member import BindingLog, Member, StatusLog, TeamDeltaRow
from app.models.merchant import Merchant, PlatformAdmin, StaffAccount
from app.models.order import Order, OrderLine
from app.models.payment import IdempotencyRecord, PaymentSettings, Refund
from app.models.product import Product
from app.models.risk import RiskFlag, RiskLog
from app.models.share import ShareLink, ShareLinkImage, Visit
from app.models.stats import DailyBuyer, DailyMemberStat, DailyStat, HourlyStat
from app.models.user import User
from app.models.withdrawal import Withdrawal

__all__ = ["BindingLog", "Commission", "CommissionPlanVersion", "DailyBuyer", "DailyMemberStat",
           "DailyStat", "Export", "HourlyStat", "IdCounter", "IdempotencyRecord", "Journal",
           "LedgerAccount", "LedgerEntry", "Level", "LevelChange", "Member", "Merchant", "Order",
           "OrderLine", "PaymentSettings", "PeriodTotal", "PlatformAdmin", "ProcessedRefund",
           "Product", "Refund", "RiskFlag", "RiskLog", "ShareLink", "ShareLinkImage",
           "StaffAccount", "StatusLog", "TeamDeltaRow", "User", "Visit", "WalletHead",
           "WalletOutbox", "Withdrawal"]
