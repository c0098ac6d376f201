"""`make run`'s launcher: the demo stack comes up, serves a sign-in, and Ctrl-C leaves nothing."""

from __future__ import annotations

import signal
import subprocess
import sys

import psutil
import pytest
import requests

from tests.support.processes import PROJECT_ROOT, child_env
from tests.support.servers import free_port, wait_until
from tests.support.wechat import sandbox_code


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_the_launcher_serves_the_demo_and_stops_every_child(tmp_path, stop_signal):
    port = free_port()
    env = child_env(PORT=str(port), SANDBOX_PORT=str(free_port()), INSTANCE_DIR=str(tmp_path),
                    DEMO_SIZE="small")
    log = open(tmp_path / "launcher.log", "wb")  # noqa: SIM115 — closed below
    launcher = subprocess.Popen([sys.executable, "-m", "app.launcher"], cwd=PROJECT_ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{base}/readyz", timeout=1).status_code == 200,
                   timeout=90, what="make run's app")
        login = requests.post(f"{base}/api/mp/v1/auth/login",
                              json={"code": sandbox_code("newcomer")}, timeout=10)
        assert login.status_code == 200
        console = requests.get(f"{base}/console/login", timeout=10)
        assert console.status_code == 200 and "商家后台登录" in console.text
        printed = (tmp_path / "launcher.log").read_text()
        assert f"{base}/console/login" in printed and "demo-owner / demo-pass-123" in printed
        children = psutil.Process(launcher.pid).children(recursive=True)
        names = " ".join(" ".join(child.cmdline()) for child in children)
        for expected in ("redis-server", "app.wechat_sandbox", "gunicorn", "run-scheduler"):
            assert expected in names
        assert (tmp_path / "fenxiao.db").exists()  # the embedded SQLite database

        launcher.send_signal(stop_signal)
        assert launcher.wait(timeout=60) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
    finally:
        if launcher.poll() is None:
            launcher.kill()
        log.close()
