"""Keys derived from SECRET_KEY, and encryption at rest for secrets and personal data.

One secret is configured; each purpose gets its own key through HKDF, so a token-signing key
can never decrypt a stored session_key and vice versa. Encrypted values are Fernet tokens
(AES-128-CBC with HMAC-SHA256), authenticated: tampering fails loudly instead of decrypting to
garbage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret_key: str, *, purpose: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"fenxiao",
                info=purpose).derive(secret_key.encode())


class SecretBox:
    """Encrypts short strings (session keys, phone numbers, payment secrets) for storage."""

    def __init__(self, secret_key: str):
        key = derive_key(secret_key, purpose=b"fenxiao/at-rest/v1")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._lookup_key = derive_key(secret_key, purpose=b"fenxiao/lookup-hash/v1")

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ValueError("stored ciphertext does not decrypt with this SECRET_KEY") from None

    def lookup_hash(self, value: str) -> str:
        """A keyed hash for equality lookups (same phone on two accounts) without plaintext."""
        return hmac.new(self._lookup_key, value.encode(), hashlib.sha256).hexdigest()


# Passwords: argon2id through argon2-cffi, with its maintained default parameters.
_hasher = None


def _password_hasher():
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


def hash_password(password: str) -> str:
    return _password_hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _password_hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A real hash to verify against when the username is unknown, so that a missing account takes
# as long to refuse as a wrong password (no username probing by timing).
def dummy_password_hash() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password("no-such-account")
    return _dummy_hash


_dummy_hash = None
