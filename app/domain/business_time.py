"""Business dates: reports, counters and assessment periods follow the merchant's timezone
(ARCHITECTURE.md 10); storage stays in UTC."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"


def merchant_zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def business_date(moment: datetime, *, timezone: str | None) -> date:
    """The merchant's calendar date at ``moment`` (an aware datetime)."""
    return moment.astimezone(merchant_zone(timezone)).date()
