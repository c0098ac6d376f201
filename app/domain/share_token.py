"""Share tokens: short, URL-safe, carrying their merchant, and valid as a mini-program scene.

``<merchant id in base 36>-<10 random base-62 characters>``, e.g. ``2s-8fK2mQx9Za`` — well under
the 32 visible characters a ``scene`` may hold, and every character is one WeChat allows there.
"""

from __future__ import annotations

import re
import secrets
import string

ALPHABET = string.digits + string.ascii_letters
TOKEN_RE = re.compile(r"^([0-9a-z]{1,12})-([0-9A-Za-z]{10})$")
MAX_SCENE_LENGTH = 32


def _base36(number: int) -> str:
    digits = string.digits + string.ascii_lowercase
    out = ""
    while True:
        number, remainder = divmod(number, 36)
        out = digits[remainder] + out
        if number == 0:
            return out


def new_token(merchant_id: int) -> str:
    if merchant_id <= 0:
        raise ValueError("merchant ids are positive")
    token = f"{_base36(merchant_id)}-{''.join(secrets.choice(ALPHABET) for _ in range(10))}"
    assert len(token) <= MAX_SCENE_LENGTH
    return token


def merchant_of(token: str) -> int | None:
    """The merchant id a token carries, or None for anything that is not a share token."""
    match = TOKEN_RE.match(token or "")
    return int(match.group(1), 36) if match else None
