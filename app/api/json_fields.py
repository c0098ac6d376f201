"""Fields for JSON request bodies.

marshmallow's Integer turns the JSON number 19.9 into 19 unless it is strict: for money that
would silently round away a fen. Every whole number in a body — fen, basis points, ids,
quantities — is read with ``Int``, which refuses anything but an integer. (Query strings are
text and stay with the lenient field; "19.9" is refused there anyway.)
"""

from __future__ import annotations

from marshmallow import fields


class Int(fields.Integer):
    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)
