"""WeChat wire crypto.

APIv3: RSA-SHA256, AES-256-GCM, RSA-OAEP. APIv2: MD5 / HMAC-SHA256 signatures, AES-256-ECB.
"""

import base64
import hashlib
import hmac
import secrets
import string

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALNUM = string.ascii_letters + string.digits


def rsa_sign(private_key, message):
    signature = private_key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def rsa_verify(public_key, message, signature_b64):
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def oaep_decrypt(private_key, ciphertext_b64):
    """Sensitive fields (e.g. transfer user_name): RSA-OAEP, SHA-1 + MGF1-SHA-1, as WeChat uses."""
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    return private_key.decrypt(base64.b64decode(ciphertext_b64), oaep).decode()


def aes_gcm_encrypt(apiv3_key, plaintext, associated_data):
    """Returns (nonce, base64 ciphertext||tag); the nonce is 12 ASCII chars like WeChat's."""
    nonce = "".join(secrets.choice(ALNUM) for _ in range(12))
    data = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), plaintext.encode(), associated_data.encode()
    )
    return nonce, base64.b64encode(data).decode()


def v2_sign(params, api_key, sign_type="MD5"):
    """Non-empty params except sign, sorted, k=v&..., then &key=API_KEY.

    MD5 or HMAC-SHA256 (keyed with the API key too), upper-case hex.
    """
    pairs = [
        f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] not in (None, "")
    ]
    message = ("&".join(pairs) + "&key=" + api_key).encode()
    if sign_type == "HMAC-SHA256":
        return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest().upper()
    return hashlib.md5(message).hexdigest().upper()


def v2_verify(params, api_key):
    sign_type = params.get("sign_type") or "MD5"
    if sign_type not in ("MD5", "HMAC-SHA256"):
        return False
    expected = v2_sign(params, api_key, sign_type)
    return hmac.compare_digest(expected, str(params.get("sign", "")))


def refund_req_info_encrypt(api_key, plaintext):
    """v2 refund notify req_info: AES-256-ECB, key = lowercase hex md5(api key), PKCS#7, base64."""
    key = hashlib.md5(api_key.encode()).hexdigest().encode()
    padder = sym_padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()
