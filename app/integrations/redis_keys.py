"""Every Redis key the app uses, built in one place.

Each key carries a hash tag (``{...}``) so that the keys one Lua script or transaction touches
land in one Redis Cluster slot; the tag is the narrowest thing those keys share.
"""

PREFIX = "fx"


def revoked_token(token_id: str) -> str:
    return f"{PREFIX}:revoked:{{{token_id}}}"


def wechat_access_token(appid: str) -> str:
    return f"{PREFIX}:wechat:{{{appid}}}:access_token"


def wechat_access_token_lock(appid: str) -> str:
    return f"{PREFIX}:wechat:{{{appid}}}:access_token:lock"
