"""The sandbox as a process: persistent platform keys across restarts, clean exit on signals."""

from __future__ import annotations

import signal

import pytest
import requests

from .conftest import SandboxProcess


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_restart_keeps_keys_and_signals_exit_cleanly(tmp_path, sig):
    state_dir = tmp_path / "state"
    first = SandboxProcess(state_dir, tmp_path).start()
    platform = requests.get(first.url + "/sandbox/platform").json()
    assert platform["wechatpay_public_key_id"].startswith("PUB_KEY_ID_")
    assert len(platform["platform_certificate_serial_no"]) == 40
    assert first.stop(sig) == 0
    assert sorted(p.name for p in state_dir.iterdir()) == [
        "platform.json",
        "platform_cert.pem",
        "platform_key.pem",
        "wechatpay_pubkey_private.pem",
    ]
    second = SandboxProcess(state_dir, tmp_path).start()
    try:
        assert requests.get(second.url + "/sandbox/platform").json() == platform
    finally:
        assert second.stop() == 0


def test_listening_line_and_healthz(sandbox):
    assert sandbox.out_path.read_text().splitlines()[0] == (
        f"wechat sandbox listening on {sandbox.url}"
    )
    assert requests.get(sandbox.url + "/sandbox/healthz").json() == {"status": "ok"}


def test_control_api_rejects_bad_input(sandbox):
    assert sandbox.control("POST", "/sandbox/merchants", {"mode": "v4"}).status_code == 400
    assert sandbox.control("POST", "/sandbox/pay/1600000000/nope").status_code == 404
    assert sandbox.control("POST", "/sandbox/notifications/nope/resend").status_code == 404
    assert sandbox.control("POST", "/sandbox/refunds/1600000000/nope/complete").status_code == 404
    assert sandbox.control("POST", "/sandbox/transfers/1600000000/nope/confirm").status_code == 404


def test_in_process_app_honours_config(tmp_path):
    from app.wechat_sandbox import create_sandbox_app

    def login(client, appid, secret):
        code = "sandbox:alice:n1"
        return client.get(
            "/sns/jscode2session",
            query_string={"appid": appid, "secret": secret, "js_code": code},
        ).get_json()

    one = create_sandbox_app(
        {
            "SANDBOX_APPID": "wxaaaaaaaaaaaaaaaa",
            "SANDBOX_APP_SECRET": "s1",
            "SANDBOX_STATE_DIR": str(tmp_path / "a"),
            "SANDBOX_SEED": "seed-1",
        }
    ).test_client()
    two = create_sandbox_app(
        {
            "SANDBOX_APPID": "wxaaaaaaaaaaaaaaaa",
            "SANDBOX_APP_SECRET": "s1",
            "SANDBOX_STATE_DIR": str(tmp_path / "b"),
            "SANDBOX_SEED": "seed-2",
        }
    ).test_client()
    assert login(one, "wx5a4d0b1c2e3f4a5b", "s1")["errcode"] == 40013
    first, second = login(one, "wxaaaaaaaaaaaaaaaa", "s1"), login(two, "wxaaaaaaaaaaaaaaaa", "s1")
    assert first["openid"] != second["openid"]  # the seed is mixed into derived ids
    assert (tmp_path / "a" / "platform_key.pem").exists()
