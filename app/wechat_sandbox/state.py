"""In-memory sandbox state. One process, many threads: every mutation happens under `lock`."""

import json
import os
import threading
from dataclasses import dataclass, field

from . import keys as platform_keys

MERCHANTS_FILE = "merchants.json"


@dataclass
class Merchant:
    mch_id: str
    appid: str
    mode: str  # "v3_public_key" | "v3_certificate" | "v2"
    sign_type: str
    apiv3_key: str
    api_key: str
    serial_no: str
    public_key: object  # only the public half: the merchant keeps its private key


@dataclass
class Order:
    mch_id: str
    out_trade_no: str
    appid: str
    api: str  # "v3" | "v2": decides the notification format
    description: str
    total: int
    openid: str
    notify_url: str
    attach: str
    fingerprint: tuple
    prepay_id: str
    sign_type: str = "MD5"  # v2 orders: notifications are signed the way the order was
    currency: str = "CNY"
    trade_type: str = "JSAPI"
    trade_state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: object = None  # datetime
    payer_total: int = 0
    refunded: int = 0  # fen held by refunds that are not CLOSED


@dataclass
class Refund:
    mch_id: str
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    api: str
    total: int
    refund: int
    notify_url: str
    fingerprint: tuple
    create_time: object
    status: str = "PROCESSING"
    success_time: object = None
    funds_account: str = "AVAILABLE"


@dataclass
class Transfer:
    mch_id: str
    out_bill_no: str
    transfer_bill_no: str
    appid: str
    openid: str
    amount: int
    remark: str
    scene_id: str
    notify_url: str
    fingerprint: tuple
    create_time: object
    update_time: object
    package_info: str
    user_name: str = ""
    state: str = "WAIT_USER_CONFIRM"
    fail_reason: str = ""


@dataclass
class Notification:
    id: str
    mch_id: str
    api: str
    event_type: str
    url: str
    body: bytes  # fixed: resends and copies carry the same bytes (same id)
    resource: dict
    serial: str = ""  # v3: Wechatpay-Serial to sign with
    deliveries: list = field(default_factory=list)


class SandboxState:
    def __init__(self):
        self.lock = threading.RLock()
        self.tokens = {}  # access_token -> expires_at (epoch seconds)
        self.stable_tokens = {}  # appid -> access_token
        self.used_codes = set()
        self.merchants = {}
        self.orders = {}  # (mch_id, out_trade_no) -> Order
        self.orders_by_txn = {}  # transaction_id -> Order
        self.refunds = {}  # (mch_id, out_refund_no) -> Refund
        self.transfers = {}  # (mch_id, out_bill_no) -> Transfer
        self.transfers_by_no = {}  # transfer_bill_no -> Transfer
        self.notifications = {}  # id -> Notification, in creation order

    def use_code(self, code):
        """True the first time a login/phone code is seen: WeChat codes work once."""
        with self.lock:
            if code in self.used_codes:
                return False
            self.used_codes.add(code)
            return True

    def order_for(self, mch_id, out_trade_no=None, transaction_id=None):
        with self.lock:
            if transaction_id:
                order = self.orders_by_txn.get(transaction_id)
                return order if order and order.mch_id == mch_id else None
            return self.orders.get((mch_id, out_trade_no))

    def refunds_of(self, order):
        with self.lock:
            return [
                r
                for r in self.refunds.values()
                if r.mch_id == order.mch_id and r.out_trade_no == order.out_trade_no
            ]

    def add_notification(self, note):
        with self.lock:
            self.notifications[note.id] = note


def persist_merchants(sandbox):
    """Merchant accounts outlive a restart (like WeChat's), so a deployment that stored a
    sandbox account keeps working across `make run`s. Orders and notifications do not."""
    path = os.path.join(sandbox.config["SANDBOX_STATE_DIR"], MERCHANTS_FILE)
    with sandbox.state.lock:  # one writer at a time: the file is replaced whole
        rows = [dict(vars(m), public_key=platform_keys.public_key_pem(m.public_key))
                for m in sandbox.state.merchants.values()]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as out:
            json.dump(rows, out)
        os.replace(path + ".tmp", path)


def load_merchants(state, state_dir):
    path = os.path.join(state_dir, MERCHANTS_FILE)
    if not os.path.exists(path):
        return
    with open(path) as stored:
        for row in json.load(stored):
            row["public_key"] = platform_keys.load_public_key(row["public_key"])
            state.merchants[row["mch_id"]] = Merchant(**row)
