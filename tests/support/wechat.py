"""Codes the WeChat sandbox understands (see app/wechat_sandbox/miniprogram.py)."""

from __future__ import annotations

import itertools
import uuid

_run = uuid.uuid4().hex[:8]  # codes from separate test runs against one sandbox never clash
_counter = itertools.count(1)


def sandbox_code(user_key: str) -> str:
    """A fresh wx.login code for the sandbox user ``user_key`` (each code works once)."""
    return f"sandbox:{user_key}:{_run}-{next(_counter)}"


def sandbox_phone_code(phone: str) -> str:
    return f"sandbox-phone:{phone}:{_run}-{next(_counter)}"
