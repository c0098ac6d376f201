"""Reading console forms: whole numbers and yuan amounts, refused with the field named (the
same 422 the API gives), never guessed."""

from __future__ import annotations

import re

from flask import request

from app.errors import InvalidInput

YUAN = re.compile(r"^\d{1,9}(\.\d{1,2})?$")
PERCENT = re.compile(r"^\d{1,3}(\.\d{1,2})?$")


def text(name: str, *, required: bool = False, max_length: int = 200) -> str:
    value = request.form.get(name, "").strip()
    if required and not value:
        raise InvalidInput(errors={name: ["必填。"]})
    if len(value) > max_length:
        raise InvalidInput(errors={name: [f"最多 {max_length} 个字。"]})
    return value


def whole(name: str, *, required: bool = True) -> int | None:
    value = request.form.get(name, "").strip()
    if not value and not required:
        return None
    if not value.isdigit():
        raise InvalidInput(errors={name: ["请填写整数。"]})
    return int(value)


def fen_from_yuan(name: str, *, required: bool = True) -> int | None:
    """¥12.34 typed by a person → 1234 fen, by string arithmetic (no float ever)."""
    value = request.form.get(name, "").strip()
    if not value and not required:
        return None
    if not YUAN.match(value):
        raise InvalidInput(errors={name: ["请填写金额，如 12.34。"]})
    yuan, _, cents = value.partition(".")
    return int(yuan) * 100 + int((cents + "00")[:2])


def bps_from_percent(name: str) -> int:
    """12.5 (a percentage typed by a person) → 1250 bps, by string arithmetic (no float)."""
    value = request.form.get(name, "").strip().rstrip("%")
    if not PERCENT.match(value):
        raise InvalidInput(errors={name: ["请填写百分比，如 10 或 12.5。"]})
    whole, _, cents = value.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def page_number() -> int:
    value = request.args.get("page", "1")
    return max(1, min(int(value), 100_000)) if value.isdigit() else 1
