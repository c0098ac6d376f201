"""Fields for JSON request bodies.

marshmallow's Integer turns the JSON number 19.9 into 19 unless it is strict: for money that
would silently round away a fen. Every whole number in a body — fen, basis points, ids,
quantities — is read with ``Int``, which refuses anything but an integer. (Query strings are
text and stay with the lenient field; "19.9" is refused there anyway.)

Ids are PostgreSQL BIGINTs: a larger number names no row, so ``ID`` refuses it here rather than
let the database fail on it (a 500 where a 422 is due).
"""

from __future__ import annotations

from marshmallow import fields, validate

MAX_ID = 2**63 - 1
ID = validate.Range(min=1, max=MAX_ID)


class Int(fields.Integer):
    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)
