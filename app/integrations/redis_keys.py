"""Every Redis key the app uses, built in one place.

Each key carries a hash tag (``{...}``) so that the keys one Lua script or pipeline touches
land in one Redis Cluster slot; the tag is the narrowest thing those keys share — for a
merchant's wallets, rankings and visitor counters, the merchant.
"""

from __future__ import annotations

from datetime import date

PREFIX = "fx"


def revoked_token(token_id: str) -> str:
    return f"{PREFIX}:revoked:{{{token_id}}}"


def wechat_access_token(appid: str) -> str:
    return f"{PREFIX}:wechat:{{{appid}}}:access_token"


def _merchant(merchant_id: int) -> str:
    return f"{PREFIX}:{{m{merchant_id}}}"


def unique_visitors_of_link(merchant_id: int, share_link_id: int) -> str:
    return f"{_merchant(merchant_id)}:uv:link:{share_link_id}"


def unique_visitors_of_distributor(merchant_id: int, distributor_id: int) -> str:
    return f"{_merchant(merchant_id)}:uv:distributor:{distributor_id}"


def unique_visitors_of_day(merchant_id: int, day: date) -> str:
    return f"{_merchant(merchant_id)}:uv:day:{day.isoformat()}"


def members_of_day(merchant_id: int, day: date, kind: str) -> str:
    """A HyperLogLog of the members counted on a business day: ``buyers`` (paid) or
    ``distributors`` (active: shared, visited or referred a paid order)."""
    return f"{_merchant(merchant_id)}:{kind}:day:{day.isoformat()}"


def wallet(merchant_id: int, member_id: int) -> str:
    """A hash: the member's four balances and the version they were read at."""
    return f"{_merchant(merchant_id)}:wallet:{member_id}"


def ranking(merchant_id: int, period: str, measure: str) -> str:
    """A sorted set: members by ``measure`` (commission | sales) for ``period`` (YYYY-MM)."""
    return f"{_merchant(merchant_id)}:rank:{period}:{measure}"


def mirror_complete(merchant_id: int) -> str:
    """Set once the merchant's whole mirror is in Redis (a rebuild finished, or the merchant
    was new). Its absence means Redis lost data (a restart without persistence, a flush):
    rankings then come from SQL until the ``restore-mirrors`` job has rebuilt the merchant."""
    return f"{_merchant(merchant_id)}:mirror:complete"


def mirror_patterns(merchant_id: int | None) -> list[str]:
    """For rebuilds: the wallet and ranking keys of one merchant (or of every merchant), and
    its completeness mark; the visitor counters are not a mirror of SQL and are left alone."""
    merchant = _merchant(merchant_id) if merchant_id is not None else f"{PREFIX}:{{m*}}"
    return [f"{merchant}:mirror:*", f"{merchant}:wallet:*", f"{merchant}:rank:*"]
