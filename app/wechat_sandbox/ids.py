"""Identifiers and timestamps shaped like WeChat's."""

import base64
import datetime
import hashlib
import hmac
import secrets
import uuid

from .crypto import ALNUM

CHINA_TZ = datetime.timezone(datetime.timedelta(hours=8))


def random_alnum(n):
    return "".join(secrets.choice(ALNUM) for _ in range(n))


def random_digits(n):
    return "".join(secrets.choice("0123456789") for _ in range(n))


def now_china():
    return datetime.datetime.now(CHINA_TZ)


def rfc3339(moment=None):
    return (moment or now_china()).isoformat(timespec="seconds")


def compact_time(moment=None):
    """yyyyMMddHHmmss, APIv2's time format."""
    return (moment or now_china()).strftime("%Y%m%d%H%M%S")


def _derive(seed, label, length):
    digest = hmac.new(seed.encode(), label.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:length]


def openid(seed, appid, user_key):
    # openids are per appid on WeChat, so the appid is part of the derivation.
    return "o" + _derive(seed, f"openid:{appid}:{user_key}", 27)


def unionid(seed, user_key):
    # unionids are the same across an Open Platform account's apps: no appid here.
    return "oU" + _derive(seed, f"unionid:{user_key}", 26)


def session_key():
    return base64.b64encode(secrets.token_bytes(16)).decode()


def mch_id():
    return "16" + random_digits(8)


def prepay_id():
    return "wx" + compact_time() + secrets.token_hex(10)


def transaction_id():
    return "42000" + random_digits(5) + now_china().strftime("%Y%m%d") + random_digits(10)


def refund_id():
    return "503" + random_digits(26)


def transfer_bill_no():
    return "1330000" + random_digits(33)


def notification_id():
    return str(uuid.uuid4())


def request_id():
    return uuid.uuid4().hex.upper()


def hex_serial():
    return secrets.token_hex(20).upper()
