"""WeChat Pay, both APIs, behind one small interface (the only code that speaks its formats).

``gateway_for`` gives a ``V3Gateway`` (wechatpayv3) or a ``V2Gateway`` (wechatpy); both prepay,
sign the object ``wx.requestPayment`` takes, query and close orders, refund, and turn a
notification into a checked, decrypted result; v3 also pays distributors (merchant transfers).
Everything they return is a plain value (``Payment``, ``RefundResult``, ``TransferResult``);
everything that goes wrong is ``PayRejected`` (a notification we must refuse, with its reason)
or ``PayUnavailable`` (WeChat failed; retry).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

# The notification window WeChat signs timestamps for; anything older is a replay.
TIMESTAMP_WINDOW_SECONDS = 300
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"


class PayRejected(Exception):
    """A notification that fails a check: nothing may change, and the reason is logged."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class PayUnavailable(Exception):
    """WeChat could not be reached or refused a call; ``code`` is WeChat's error code."""

    def __init__(self, message: str, *, code: str = "", status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class PayAccount:
    """A merchant's WeChat Pay credentials, decrypted for one use (never logged)."""

    api: str  # v3 | v2
    appid: str
    mch_id: str
    sign_type: str = "MD5"
    apiv3_key: str = ""
    merchant_serial_no: str = ""
    merchant_private_key_pem: str = ""
    wechatpay_public_key_id: str = ""
    wechatpay_public_key_pem: str = ""
    platform_certificate_serial_no: str = ""
    platform_certificate_pem: str = ""
    api_key: str = ""

    def __repr__(self) -> str:  # secrets must never reach a log line through a repr
        return f"PayAccount(api={self.api!r}, appid={self.appid!r}, mch_id={self.mch_id!r})"


@dataclass(frozen=True)
class Payment:
    """WeChat's word on one order, from a notification or a query."""

    appid: str
    mch_id: str
    out_trade_no: str
    trade_state: str  # SUCCESS | NOTPAY | CLOSED | REFUND | ...
    total_fen: int
    transaction_id: str = ""
    success_time: str = ""

    @property
    def is_paid(self) -> bool:
        return self.trade_state in ("SUCCESS", "REFUND")


@dataclass(frozen=True)
class RefundResult:
    mch_id: str
    out_trade_no: str
    out_refund_no: str
    refund_id: str
    status: str  # PROCESSING | SUCCESS | ABNORMAL | CLOSED (v2 spellings are normalised)
    refund_fen: int


@dataclass(frozen=True)
class TransferResult:
    """A merchant transfer bill (商家转账) as WeChat reports it."""

    mch_id: str
    out_bill_no: str
    state: str  # ACCEPTED | PROCESSING | WAIT_USER_CONFIRM | TRANSFERING | SUCCESS | FAIL | ...
    transfer_amount_fen: int
    transfer_bill_no: str = ""
    package_info: str = ""
    fail_reason: str = ""

    @property
    def is_final(self) -> bool:
        return self.state in ("SUCCESS", "FAIL", "CANCELLED")


@dataclass(frozen=True)
class Notification:
    """A verified notification: ``kind`` is payment | refund | transfer | other."""

    kind: str
    event_type: str
    payment: Payment | None = None
    refund: RefundResult | None = None
    transfer: TransferResult | None = None
    resource: dict | None = None


_cache: dict[tuple, object] = {}
_cache_lock = threading.Lock()


def gateway_for(account_of, *, base_url: str, cache_key: tuple, timeout: float = 5.0):
    """The gateway for the account ``account_of()`` returns. Building one decrypts secrets and
    parses RSA keys, so each process keeps one per ``cache_key`` (merchant id and a fingerprint
    of the stored settings): no state, only parsed keys."""
    from app.integrations.wechatpay_v2 import V2Gateway
    from app.integrations.wechatpay_v3 import V3Gateway

    with _cache_lock:
        if (found := _cache.get((cache_key, base_url))) is not None:
            return found
    account = account_of()
    kind = V3Gateway if account.api == "v3" else V2Gateway
    gateway = kind(account, base_url=base_url, timeout=timeout)
    with _cache_lock:
        _cache[(cache_key, base_url)] = gateway
    return gateway
