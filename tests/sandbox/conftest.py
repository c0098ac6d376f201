"""The WeChat sandbox as a real process, plus a notify receiver that records what it is sent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

PROJECT_ROOT = Path(__file__).resolve().parents[2]
V2_SUCCESS = (
    "<xml><return_code><![CDATA[SUCCESS]]></return_code>"
    "<return_msg><![CDATA[OK]]></return_msg></xml>"
)


class SandboxProcess:
    """`python -m app.wechat_sandbox --port 0`; the port is read from its "listening on" line."""

    def __init__(self, state_dir: Path, log_dir: Path):
        self.state_dir, self.log_dir = state_dir, log_dir
        self.process = None
        self.url = None

    def start(self, timeout=30):
        self.out_path = self.log_dir / f"sandbox-{uuid.uuid4().hex[:8]}.out"
        self._out = open(self.out_path, "wb")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, SANDBOX_STATE_DIR=str(self.state_dir), PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.wechat_sandbox", "--host", "127.0.0.1", "--port", "0"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.out_path.read_text()
            for line in self.out_path.read_text().splitlines():
                if line.startswith("wechat sandbox listening on "):
                    self.url = line.rsplit(" ", 1)[1]
            if self.url and self._healthy():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"sandbox did not start: {self.out_path.read_text()}")

    def _healthy(self):
        try:
            return requests.get(self.url + "/sandbox/healthz", timeout=1).json() == {"status": "ok"}
        except requests.RequestException:
            return False

    def stop(self, sig=signal.SIGTERM):
        """Returns the exit code: the sandbox must exit cleanly (0) on SIGTERM/SIGINT."""
        code = None
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                code = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()
        return code

    def control(self, method, path, json=None):
        return requests.request(method, self.url + path, json=json, timeout=30)


class NotifyReceiver:
    """A real HTTP server standing in for the merchant's notify_url.

    Paths starting with /v2/ answer WeChat's SUCCESS XML, /fail/ answers 500, /slow/ waits 0.3 s
    (to observe concurrent deliveries); everything else answers 204.
    """

    def __init__(self):
        self.records = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def _app(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if request.path.startswith("/slow/"):
                time.sleep(0.3)
            response = self._reply(request.path)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.records.append(
                    {"path": request.path, "headers": dict(request.headers), "body": body}
                )
        return response(environ, start_response)

    @staticmethod
    def _reply(path):
        if path.startswith("/v2/"):
            return Response(V2_SUCCESS, content_type="text/xml")
        if path.startswith("/fail/"):
            return Response(
                '{"code":"FAIL","message":"失败"}', status=500, content_type="application/json"
            )
        return Response(status=204)

    def new_url(self, kind="v3"):
        return f"{self.base}/{kind}/{uuid.uuid4().hex}"

    def received(self, url):
        path = url[len(self.base) :]
        with self.lock:
            return [r for r in self.records if r["path"] == path]

    def wait_for(self, url, count=1, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(url)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(
            f"expected {count} notification(s) at {url}, got {len(self.received(url))}"
        )


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    proc = SandboxProcess(
        tmp_path_factory.mktemp("sandbox-state"), tmp_path_factory.mktemp("sandbox-logs")
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def receiver():
    recv = NotifyReceiver()
    thread = threading.Thread(target=recv.server.serve_forever, daemon=True)
    thread.start()
    yield recv
    recv.server.shutdown()


@pytest.fixture(scope="session")
def merchants(sandbox):
    """One merchant per key mode, created once (RSA key generation is not free)."""

    def create(mode, sign_type="MD5"):
        resp = sandbox.control("POST", "/sandbox/merchants", {"mode": mode, "sign_type": sign_type})
        assert resp.status_code == 201, resp.text
        return resp.json()

    return {
        "v3_public_key": create("v3_public_key"),
        "v3_certificate": create("v3_certificate"),
        "v2_md5": create("v2", "MD5"),
        "v2_hmac": create("v2", "HMAC-SHA256"),
    }


@pytest.fixture(scope="session")
def access_token(sandbox):
    resp = requests.get(
        sandbox.url + "/cgi-bin/token",
        params={
            "grant_type": "client_credential",
            "appid": "wx5a4d0b1c2e3f4a5b",
            "secret": "sandbox-app-secret",
        },
    )
    return resp.json()["access_token"]
