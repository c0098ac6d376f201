"""Mini-program API through wechatpy's WeChatClient, pointed at the sandbox process."""

from __future__ import annotations

import base64
import ctypes.util
import io
import re
import uuid

import pytest
import requests
from wechatpy.exceptions import WeChatClientException

from .helpers import APPID, SECRET, wechat_client


def login_code(user):
    return f"sandbox:{user}:{uuid.uuid4().hex[:8]}"


def test_token_endpoint_issues_tokens_and_checks_credentials(sandbox):
    ok = requests.get(
        sandbox.url + "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
    ).json()
    assert ok["expires_in"] == 7200 and len(ok["access_token"]) > 32
    bad_appid = requests.get(
        sandbox.url + "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": "wx0000000000000000", "secret": SECRET},
    ).json()
    assert bad_appid["errcode"] == 40013
    bad_secret = requests.get(
        sandbox.url + "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": APPID, "secret": "nope"},
    ).json()
    assert bad_secret["errcode"] == 40125


def test_stable_token_is_stable_until_forced(sandbox):
    body = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    first = requests.post(sandbox.url + "/cgi-bin/stable_token", json=body).json()
    again = requests.post(sandbox.url + "/cgi-bin/stable_token", json=body).json()
    forced = requests.post(
        sandbox.url + "/cgi-bin/stable_token", json=body | {"force_refresh": True}
    ).json()
    assert first["access_token"] == again["access_token"] != forced["access_token"]
    assert 0 < first["expires_in"] <= 7200


def test_login_returns_stable_ids_and_fresh_session_keys(sandbox, access_token):
    client = wechat_client(sandbox.url, access_token)
    first = client.wxa.code_to_session(login_code("alice"))
    second = client.wxa.code_to_session(login_code("alice"))
    other = client.wxa.code_to_session(login_code("bob"))
    assert first["openid"] == second["openid"] != other["openid"]
    assert first["unionid"] == second["unionid"] != other["unionid"]
    assert re.fullmatch(r"o[A-Za-z0-9_-]{27}", first["openid"])
    assert re.fullmatch(r"oU[A-Za-z0-9_-]{26}", first["unionid"])
    assert len(base64.b64decode(first["session_key"])) == 16
    assert first["session_key"] != second["session_key"]
    expected = requests.get(sandbox.url + "/sandbox/openid", params={"user": "alice"}).json()
    assert expected == {"openid": first["openid"], "unionid": first["unionid"]}


def test_login_code_works_once(sandbox, access_token):
    client = wechat_client(sandbox.url, access_token)
    code = login_code("carol")
    client.wxa.code_to_session(code)
    with pytest.raises(WeChatClientException) as err:
        client.wxa.code_to_session(code)
    assert err.value.errcode == 40029


@pytest.mark.parametrize(
    "errcode, text",
    [
        (40029, "invalid code"),
        (45011, "api minute-quota reach limit"),
        (40226, "code blocked"),
        (-1, "system error"),
    ],
)
def test_scripted_login_errors(sandbox, access_token, errcode, text):
    client = wechat_client(sandbox.url, access_token)
    with pytest.raises(WeChatClientException) as err:
        client.wxa.code_to_session(f"sandbox-error:{errcode}")
    assert err.value.errcode == errcode
    assert err.value.errmsg.startswith(text)


def test_unknown_code_and_bad_secret(sandbox, access_token):
    with pytest.raises(WeChatClientException) as err:
        wechat_client(sandbox.url, access_token).wxa.code_to_session("061abcDEF")
    assert err.value.errcode == 40029
    with pytest.raises(WeChatClientException) as err:
        wechat_client(sandbox.url, access_token, secret="wrong").wxa.code_to_session(
            login_code("dan")
        )
    assert err.value.errcode == 40125


def test_phone_number(sandbox, access_token):
    client = wechat_client(sandbox.url, access_token)
    base = sandbox.url + "/"
    code = f"sandbox-phone:13800138000:{uuid.uuid4().hex[:6]}"
    result = client.post("wxa/business/getuserphonenumber", data={"code": code}, api_base_url=base)
    info = result["phone_info"]
    assert result["errcode"] == 0
    assert info["phoneNumber"] == info["purePhoneNumber"] == "13800138000"
    assert info["countryCode"] == "86" and info["watermark"]["appid"] == APPID
    for bad_code, errcode in ((code, 40029), ("whatever", 40029), ("sandbox-error:45011", 45011)):
        with pytest.raises(WeChatClientException) as err:
            client.post(
                "wxa/business/getuserphonenumber", data={"code": bad_code}, api_base_url=base
            )
        assert err.value.errcode == errcode


def test_access_token_is_required_and_checked(sandbox):
    fresh = requests.get(
        sandbox.url + "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
    ).json()["access_token"]
    client = wechat_client(sandbox.url, "not-a-token")
    with pytest.raises(WeChatClientException) as err:
        client.wxa.get_wxa_code_unlimited("abc")
    assert err.value.errcode == 40001
    expired = sandbox.control("POST", "/sandbox/tokens/expire", {"access_token": fresh}).json()
    assert expired == {"expired": 1}
    with pytest.raises(WeChatClientException) as err:
        wechat_client(sandbox.url, fresh).wxa.get_wxa_code_unlimited("abc")
    assert err.value.errcode == 42001


def _zbar_available():
    return ctypes.util.find_library("zbar") is not None


@pytest.mark.skipif(not _zbar_available(), reason="libzbar (Debian libzbar0) is not installed")
def test_wxacode_png_decodes_to_the_scene(sandbox, access_token):
    from PIL import Image
    from pyzbar.pyzbar import decode

    scene = "r=AbC123xyz&c=9~_.!*"
    response = wechat_client(sandbox.url, access_token).wxa.get_wxa_code_unlimited(
        scene, width=430, page="pages/index/index"
    )
    assert response.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.size == (430, 430)
    assert [d.data.decode() for d in decode(image)] == [scene]


@pytest.mark.parametrize(
    "scene, page, errcode",
    [
        ("", None, 40169),
        ("x" * 33, None, 40169),
        ("中文", None, 40169),
        ("a b", None, 40169),
        ("100%", None, 40169),
        ("ok", "/pages/index/index", 41030),
    ],
)
def test_wxacode_validation(sandbox, access_token, scene, page, errcode):
    with pytest.raises(WeChatClientException) as err:
        wechat_client(sandbox.url, access_token).wxa.get_wxa_code_unlimited(scene, page=page)
    assert err.value.errcode == errcode


def test_wxacode_accepts_the_full_scene_alphabet_at_32_chars(sandbox, access_token):
    response = wechat_client(sandbox.url, access_token).wxa.get_wxa_code_unlimited(
        "0aZ!#$&'()*+,/:;=?@-._~" + "x" * 9
    )
    assert response.content.startswith(b"\x89PNG")


def test_urllink(sandbox, access_token):
    client = wechat_client(sandbox.url, access_token)
    base = sandbox.url + "/"
    result = client.post(
        "wxa/generate_urllink",
        data={
            "path": "pages/index/index",
            "query": "ref=abc",
            "expire_type": 1,
            "expire_interval": 30,
        },
        api_base_url=base,
    )
    assert result["errcode"] == 0 and re.fullmatch(r"https://wxaurl\.cn/\w+", result["url_link"])
    with pytest.raises(WeChatClientException) as err:
        client.post("wxa/generate_urllink", data={"path": "/pages/index/index"}, api_base_url=base)
    assert err.value.errcode == 40165
