"""The Redis mirror of wallets and rankings: absolute values, written under a version.

A write carries the SQL state of one member — the four balances and its totals for some
periods — and the version it was read at (the wallet's revision, which every posting to the
wallet raises under one row lock, so it grows in commit order). The script skips a
write older than the stored one, so a late sweeper can never roll the mirror back; an equal
version rewrites the same ledger state (and may add a period's rankings the first write did
not carry); there is no increment to repeat. The script declares every key
it touches, and all of them carry the merchant's hash tag (one cluster slot).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis as redis_lib

from app.integrations import redis_keys

WALLET_FIELDS = ("pending", "available", "withdrawing", "paid_out")

# KEYS[1] the wallet hash, then one (commission, sales) ranking pair per period.
# ARGV: wallet version, member id, the four balances, then per period: its revision and the
# (commission, sales) pair. The wallet and each period's rankings are written only when newer
# than what the hash records for them; returns how many of them were written.
_MIRROR = """
local written = 0
local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '-1')
if stored < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'pending', ARGV[3], 'available', ARGV[4],
             'withdrawing', ARGV[5], 'paid_out', ARGV[6])
  written = written + 1
end
for i = 2, #KEYS, 2 do
  local a = 7 + (i - 2) / 2 * 3
  local field = 'rev:' .. KEYS[i]
  local seen = tonumber(redis.call('HGET', KEYS[1], field) or '-1')
  if seen < tonumber(ARGV[a]) then
    redis.call('ZADD', KEYS[i], ARGV[a + 1], ARGV[2])
    redis.call('ZADD', KEYS[i + 1], ARGV[a + 2], ARGV[2])
    redis.call('HSET', KEYS[1], field, ARGV[a])
    written = written + 1
  end
end
return written
"""


@dataclass(frozen=True)
class WalletState:
    merchant_id: int
    member_id: int
    version: int
    balances: dict[str, int]
    # period (YYYY-MM) -> (commission_fen, sales_fen)
    period_totals: dict[str, tuple[int, int]]
    # period -> its revision in SQL; a period missing here is versioned like the wallet
    period_revisions: dict[str, int] = field(default_factory=dict)


def write(client: redis_lib.Redis, state: WalletState) -> bool:
    """Mirror one member's state; False when Redis already holds it or something newer."""
    keys = [redis_keys.wallet(state.merchant_id, state.member_id)]
    args: list[int | str] = [state.version, state.member_id,
                             *(state.balances[field] for field in WALLET_FIELDS)]
    for period, (commission, sales) in sorted(state.period_totals.items()):
        keys += [redis_keys.ranking(state.merchant_id, period, "commission"),
                 redis_keys.ranking(state.merchant_id, period, "sales")]
        args += [state.period_revisions.get(period, state.version), commission, sales]
    return bool(client.eval(_MIRROR, len(keys), *keys, *args))


def read_wallet(client: redis_lib.Redis, merchant_id: int, member_id: int) -> dict | None:
    """The mirrored balances, or None when Redis has none or cannot answer."""
    try:
        stored = client.hgetall(redis_keys.wallet(merchant_id, member_id))
    except redis_lib.RedisError:
        return None
    if not stored or any(field not in stored for field in WALLET_FIELDS):
        return None
    return {field: int(stored[field]) for field in WALLET_FIELDS}


def top(client: redis_lib.Redis, merchant_id: int, period: str, measure: str,
        count: int) -> list[tuple[int, int]] | None:
    """The ``count`` best members by ``measure`` for ``period``, or None when Redis is down or
    does not hold the merchant's whole mirror (a ranking rebuilt only from the members paid
    since Redis lost its data would leave the others out)."""
    try:
        pipe = client.pipeline(transaction=False)  # both keys in the merchant's slot
        pipe.exists(redis_keys.mirror_complete(merchant_id))
        pipe.zrevrange(redis_keys.ranking(merchant_id, period, measure), 0, count - 1,
                       withscores=True)
        complete, rows = pipe.execute()
    except redis_lib.RedisError:
        return None
    if not complete:
        return None
    return [(int(member), int(score)) for member, score in rows]


def mark_complete(client: redis_lib.Redis, merchant_ids: list[int]) -> None:
    """Record that these merchants' mirrors are whole (raises ``RedisError``)."""
    pipe = client.pipeline(transaction=False)
    for merchant_id in merchant_ids:
        pipe.set(redis_keys.mirror_complete(merchant_id), 1)
    pipe.execute()


def incomplete(client: redis_lib.Redis, merchant_ids: list[int]) -> list[int]:
    """Those of ``merchant_ids`` whose mirror Redis does not hold whole (raises
    ``RedisError``)."""
    pipe = client.pipeline(transaction=False)
    for merchant_id in merchant_ids:
        pipe.exists(redis_keys.mirror_complete(merchant_id))
    return [m for m, found in zip(merchant_ids, pipe.execute(), strict=True) if not found]


def forget_merchant(client: redis_lib.Redis, merchant_id: int | None) -> int:
    """Delete every mirrored key of one merchant (or all): a rebuild starts from nothing."""
    deleted = 0
    for pattern in redis_keys.mirror_patterns(merchant_id):
        for key in client.scan_iter(match=pattern, count=1000):
            deleted += client.delete(key)
    return deleted
