"""Real processes for end-to-end tests: the WeChat sandbox and gunicorn serving the app."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.servers import free_port, wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ManagedProcess:
    """A child process that is ready once ``ready_url`` answers 200; stopped as a group."""

    def __init__(self, command: list[str], *, env: dict[str, str], ready_url: str,
                 log_path: Path):
        self.command = command
        self.env = env
        self.ready_url = ready_url
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, *, timeout: float = 60) -> ManagedProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 — closed in stop()
        self.process = subprocess.Popen(self.command, env=self.env, cwd=PROJECT_ROOT,
                                        stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with {self.process.returncode}; see {self.log_path}")
            return requests.get(self.ready_url, timeout=1).status_code == 200

        wait_until(ready, timeout=timeout, what=" ".join(self.command[:3]))
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def child_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FENXIAO_")}
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_sandbox(state_dir: Path, log_dir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        [sys.executable, "-m", "app.wechat_sandbox", "--host", "127.0.0.1", "--port", str(port)],
        env=child_env(SANDBOX_STATE_DIR=str(state_dir)),
        ready_url=f"{base_url}/sandbox/healthz", log_path=log_dir / "wechat-sandbox.log",
    )
    return process.start(), base_url


def start_gunicorn(app_env: dict[str, str], log_dir: Path, *, workers: int = 2
                   ) -> tuple[ManagedProcess, str]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    # WeChat's notifications (the sandbox's) come back to this gunicorn.
    app_env = {"PUBLIC_BASE_URL": base_url, **app_env}
    process = ManagedProcess(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "wsgi:app"],
        env=child_env(**app_env), ready_url=f"{base_url}/healthz",
        log_path=log_dir / "gunicorn.log",
    )
    return process.start(), base_url
