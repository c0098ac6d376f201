"""The mini-program API (login, phone numbers, codes, URL links) through wechatpy.

wechatpy is used unchanged except for two things WECHAT.md warns about: its base URLs are
instance attributes pointed at ``WECHAT_API_BASE_URL`` (the sandbox in demos and tests), and its
access-token fetch uses a hard-coded host, so ``_Client`` fetches from the configured base URL
and keeps the token in Redis, shared by every worker and host.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass

import redis as redis_lib
import requests
from PIL import Image, UnidentifiedImageError
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from app.integrations import redis_keys

log = logging.getLogger("fenxiao.wechat")

# WeChat's "system busy"; like a network failure, the caller should simply retry later.
BUSY = -1


class WeChatError(Exception):
    """WeChat answered with an error code (``errcode``) that the caller must map."""

    def __init__(self, errcode: int | None, errmsg: str = ""):
        super().__init__(f"WeChat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatUnavailable(WeChatError):
    """WeChat could not be reached or answered with something that is not an answer."""


@dataclass(frozen=True)
class WeChatSession:
    openid: str
    unionid: str | None
    session_key: str


class _TokenStorage(SessionStorage):
    """wechatpy's session storage over our Redis, keyed by ``redis_keys``.

    Only the access token goes through it. When Redis is down the token is fetched afresh
    (WeChat allows it; the old token stays valid for five minutes after a new one is issued).
    """

    def __init__(self, client: redis_lib.Redis, appid: str):
        self._redis = client
        self._key = redis_keys.wechat_access_token(appid)

    def get(self, key, default=None):
        try:
            return self._redis.get(self._key) or default
        except redis_lib.RedisError:
            return default

    def set(self, key, value, ttl=None):
        # Refresh five minutes early so no request carries a token that expires in flight.
        ttl = max(60, int(ttl or 7200) - 300)
        try:
            self._redis.set(self._key, value, ex=ttl)
        except redis_lib.RedisError:
            log.warning("could not cache the WeChat access token in Redis")

    def delete(self, key):
        with contextlib.suppress(redis_lib.RedisError):
            self._redis.delete(self._key)


class _Client(WeChatClient):
    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


class MiniProgram:
    def __init__(self, *, appid: str, secret: str, api_base_url: str,
                 redis_client: redis_lib.Redis, timeout: float):
        self._client = _Client(appid, secret, session=_TokenStorage(redis_client, appid),
                               timeout=timeout)
        base = api_base_url.rstrip("/") + "/"
        self._client.API_BASE_URL = base + "cgi-bin/"
        self._client.wxa.API_BASE_URL = base

    def code_to_session(self, code: str) -> WeChatSession:
        """Exchange a ``wx.login`` code; each code works once, for five minutes."""
        result = self._call(self._client.wxa.code_to_session, code)
        return WeChatSession(openid=result["openid"], unionid=result.get("unionid") or None,
                             session_key=result["session_key"])

    def phone_number(self, code: str) -> str:
        """The phone number behind a ``getPhoneNumber`` button code, with country code only
        when it is not China's."""
        result = self._call(self._client.wxa._post, "wxa/business/getuserphonenumber",
                            data={"code": code})
        info = result["phone_info"]
        country = str(info.get("countryCode") or "86")
        pure = info["purePhoneNumber"]
        return pure if country == "86" else f"+{country}{pure}"

    def _call(self, method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except WeChatClientException as error:
            if error.errcode in (None, BUSY):
                raise WeChatUnavailable(error.errcode, str(error.errmsg or "")) from None
            raise WeChatError(int(error.errcode), str(error.errmsg or "")) from None
        except (requests.RequestException, ValueError, KeyError) as error:
            # ValueError/KeyError: an answer that is not WeChat's JSON shape.
            raise WeChatUnavailable(None, type(error).__name__) from None

    def wxa_code_unlimited(self, scene: str, page: str, *, width: int = 430,
                           check_path: bool = True) -> bytes:
        """A mini-program code (wxacode.getUnlimited) for ``scene`` opening ``page``, as PNG.

        The body is wechatpy's ``get_wxa_code_unlimited`` body plus ``check_path``, which
        wechatpy 1.8.18 cannot send: without it WeChat refuses pages not yet released.
        WeChat answers an image (JPEG in practice, though documented as PNG) or a JSON error;
        images are normalised to PNG so the caller can serve them as ``image/png``.
        """
        result = self._call(self._client.wxa._post, "wxa/getwxacodeunlimit", data={
            "scene": scene, "page": page, "width": width, "check_path": check_path,
            "auto_color": False, "line_color": {"r": "0", "g": "0", "b": "0"},
            "is_hyaline": False})
        if isinstance(result, dict):  # JSON without a non-zero errcode: still not an image
            raise WeChatUnavailable(result.get("errcode"), str(result.get("errmsg") or ""))
        return _as_png(result.content)

    def url_link(self, path: str, query: str, *, expire_days: int) -> str:
        """A URL Link (wxa/generate_urllink) opening ``path?query``, valid ``expire_days``
        days (WeChat allows at most 30)."""
        result = self._call(self._client.wxa._post, "wxa/generate_urllink", data={
            "path": path, "query": query, "is_expire": True, "expire_type": 1,
            "expire_interval": expire_days})
        if not result.get("url_link"):
            raise WeChatUnavailable(result.get("errcode"), "no url_link in the answer")
        return result["url_link"]


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _as_png(content: bytes) -> bytes:
    if content.startswith(_PNG_SIGNATURE):
        return content
    try:
        with Image.open(io.BytesIO(content)) as image:
            out = io.BytesIO()
            image.save(out, format="PNG")
            return out.getvalue()
    except (UnidentifiedImageError, OSError):
        raise WeChatUnavailable(None, "the code is not an image") from None
