"""The sandbox's two WeChat Pay key pairs, as on WeChat: the platform certificate's key (with a
self-signed X.509 certificate) and the separate "WeChat Pay public key" (PUB_KEY_ID_...).

They are created once per state directory and reused, so a restarted sandbox keeps the keys that
merchants (and their cached platform certificates) already trust.
"""

import datetime
import json
import os
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

KEY_FILE = "platform_key.pem"
PUBKEY_FILE = "wechatpay_pubkey_private.pem"
CERT_FILE = "platform_cert.pem"
META_FILE = "platform.json"
CERT_VALID_DAYS = 5 * 365  # WeChat platform certificates last five years


class PlatformKeys:
    def __init__(self, cert_key, certificate, pubkey_key, public_key_id):
        self.cert_key = cert_key  # signs for the platform certificate
        self.certificate = certificate
        self.pubkey_key = pubkey_key  # signs for the WeChat Pay public key
        self.public_key_id = public_key_id

    @property
    def public_key(self):
        return self.pubkey_key.public_key()

    def private_key_for(self, serial):
        """The private key behind a Wechatpay-Serial (public key id or certificate serial)."""
        return self.pubkey_key if serial == self.public_key_id else self.cert_key

    @property
    def serial_no(self):
        # wechatpayv3 formats serials as hex(...).upper() without padding;
        # ours never has a leading 0.
        return format(self.certificate.serial_number, "X")

    @property
    def public_key_pem(self):
        return public_key_pem(self.public_key)

    @property
    def certificate_pem(self):
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def serial_for_mode(self, mode):
        """Which Wechatpay-Serial a merchant of this key mode expects on responses and callbacks."""
        return self.serial_no if mode == "v3_certificate" else self.public_key_id

    def is_known_serial(self, serial):
        return serial in (self.serial_no, self.public_key_id)


def new_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key):
    # PKCS#8 ("BEGIN PRIVATE KEY"), the form apiclient_key.pem has and wechatpayv3 expects.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_key_pem(key):
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem):
    return serialization.load_pem_public_key(pem.encode())


def load_or_create(state_dir):
    names = (KEY_FILE, PUBKEY_FILE, CERT_FILE, META_FILE)
    paths = {name: os.path.join(state_dir, name) for name in names}
    if all(os.path.exists(p) for p in paths.values()):
        return _load(paths)
    os.makedirs(state_dir, exist_ok=True)
    keys = _create()
    _write(paths[KEY_FILE], private_key_pem(keys.cert_key))
    _write(paths[PUBKEY_FILE], private_key_pem(keys.pubkey_key))
    _write(paths[CERT_FILE], keys.certificate_pem)
    _write(paths[META_FILE], json.dumps({"public_key_id": keys.public_key_id}))
    return keys


def _load(paths):
    def private(name):
        with open(paths[name], "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)

    with open(paths[CERT_FILE], "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(paths[META_FILE]) as f:
        meta = json.load(f)
    return PlatformKeys(private(KEY_FILE), cert, private(PUBKEY_FILE), meta["public_key_id"])


def _create():
    cert_key = new_rsa_key()
    public_key_id = "PUB_KEY_ID_01" + "".join(secrets.choice("0123456789") for _ in range(30))
    return PlatformKeys(cert_key, _self_signed(cert_key), new_rsa_key(), public_key_id)


def _self_signed(key):
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com (sandbox)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com sandbox platform certificate"),
        ]
    )
    # 40 hex digits like WeChat's serials, top nibble non-zero, below 2**159 as X.509 requires.
    serial = (1 << 156) + secrets.randbelow((1 << 159) - (1 << 156))
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=CERT_VALID_DAYS))
        .sign(key, hashes.SHA256())
    )


def _write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
