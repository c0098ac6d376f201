"""Building and delivering WeChat notifications (v3 JSON + signed headers, v2 XML)."""

import json
import threading
import time

import requests

from . import crypto, ids
from .config import NOTIFY_TIMEOUT_SECONDS
from .state import Notification
from .xmlwire import to_xml

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
# v3 event -> (summary, original_type; the AAD equals original_type)
V3_EVENTS = {
    "TRANSACTION.SUCCESS": ("支付成功", "transaction"),
    "REFUND.SUCCESS": ("退款成功", "refund"),
    "REFUND.ABNORMAL": ("退款异常", "refund"),
    "REFUND.CLOSED": ("退款关闭", "refund"),
    "MCHTRANSFER.BILL.FINISHED": ("商家转账单据终态通知", "mch_payment"),
}


def compact_json(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class Notifier:
    def __init__(self, state, keys):
        self.state = state
        self.keys = keys

    def build_v3(self, merchant, url, event_type, resource):
        summary, original_type = V3_EVENTS[event_type]
        nonce, ciphertext = crypto.aes_gcm_encrypt(
            merchant.apiv3_key, compact_json(resource), original_type
        )
        note_id = ids.notification_id()
        body = {
            "id": note_id,
            "create_time": ids.rfc3339(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": original_type,
                "nonce": nonce,
            },
        }
        note = Notification(
            note_id,
            merchant.mch_id,
            "v3",
            event_type,
            url,
            compact_json(body).encode(),
            resource,
            serial=self.keys.serial_for_mode(merchant.mode),
        )
        self.state.add_notification(note)
        return note

    def build_v2_payment(self, merchant, url, fields, sign_type):
        fields = dict(fields, nonce_str=ids.random_alnum(32))
        if sign_type == "HMAC-SHA256":
            fields["sign_type"] = sign_type  # MD5 is the default and WeChat omits it then
        fields["sign"] = crypto.v2_sign(fields, merchant.api_key, sign_type)
        return self._add_v2(merchant, url, "TRANSACTION.SUCCESS", to_xml(fields), fields)

    def build_v2_refund(self, merchant, appid, url, event_type, req_info_fields):
        plaintext = to_xml(req_info_fields, root="root")
        fields = {
            "return_code": "SUCCESS",
            "appid": appid,
            "mch_id": merchant.mch_id,
            "nonce_str": ids.random_alnum(32),
            "req_info": crypto.refund_req_info_encrypt(merchant.api_key, plaintext),
        }
        return self._add_v2(merchant, url, event_type, to_xml(fields), req_info_fields)

    def _add_v2(self, merchant, url, event_type, xml, resource):
        note = Notification(
            ids.notification_id(), merchant.mch_id, "v2", event_type, url, xml.encode(), resource
        )
        self.state.add_notification(note)
        return note

    def headers_for(self, note):
        """Fresh headers per send; for v3 a fresh timestamp/nonce/signature over the same body."""
        if note.api == "v2":
            return {"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0"}
        timestamp, nonce = str(int(time.time())), ids.random_alnum(32)
        message = f"{timestamp}\n{nonce}\n{note.body.decode()}\n"
        return {
            "Content-Type": "application/json",
            "User-Agent": "Mozilla/4.0",
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": crypto.rsa_sign(self.keys.private_key_for(note.serial), message),
            "Wechatpay-Serial": note.serial,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }

    def deliver(self, note, copies=1, concurrent=False):
        """POST `copies` identical copies; concurrently like WeChat's several servers if asked."""
        if not note.url:
            return []
        if not concurrent:
            results = [self._post(note) for _ in range(copies)]
        else:
            results = [None] * copies
            barrier = threading.Barrier(copies)

            def send(i):
                barrier.wait()
                results[i] = self._post(note)

            threads = [threading.Thread(target=send, args=(i,)) for i in range(copies)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        with self.state.lock:
            note.deliveries.extend(results)
        return results

    def deliver_later(self, note, delay=0.2):
        """Fire-and-forget delivery, for state changes that WeChat reports asynchronously."""

        def run():
            time.sleep(delay)
            self.deliver(note)

        threading.Thread(target=run, daemon=True).start()

    def _post(self, note):
        result = {"status": None, "body": "", "error": None, "at": ids.rfc3339()}
        try:
            resp = requests.post(
                note.url,
                data=note.body,
                headers=self.headers_for(note),
                timeout=NOTIFY_TIMEOUT_SECONDS,
            )
            result.update(status=resp.status_code, body=resp.text[:500])
        except requests.RequestException as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
        return result


def describe(note):
    """The control API's view of a notification."""
    return {
        "id": note.id,
        "mch_id": note.mch_id,
        "api": note.api,
        "event_type": note.event_type,
        "url": note.url,
        "resource": note.resource,
        "body": note.body.decode(),
        "deliveries": list(note.deliveries),
    }
