"""A fake WeChat (mini-program API, WeChat Pay v2/v3 gateway, notifications) speaking the real wire
formats and signatures, so wechatpy / wechatpayv3 run against it unchanged except for base URLs.

Run it with `python -m app.wechat_sandbox --host 127.0.0.1 --port 8001`.
"""

from .factory import create_sandbox_app

__all__ = ["create_sandbox_app"]
