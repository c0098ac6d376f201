"""The console in a real browser: Playwright driving Debian's Chromium against gunicorn
serving the demo data (`flask demo seed`) on a database of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import PROJECT_ROOT, child_env, start_gunicorn

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
VIEWPORTS = {"phone": {"width": 375, "height": 812}, "desktop": {"width": 1280, "height": 900}}
PASSWORD = "demo-pass-123"


@pytest.fixture(scope="session")
def console_env(pg_server, redis_server, sandbox_url, tmp_path_factory) -> dict:
    """A migrated, demo-seeded database; Redis database 3 so other tests' cleanups (which
    empty database 0) never touch it."""
    env = {
        "FENXIAO_ENV": "test", "DATABASE_URL": pg_server.create_database("fenxiao_console"),
        "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/3",
        "WECHAT_API_BASE_URL": sandbox_url, "WECHATPAY_API_BASE_URL": sandbox_url,
        "INSTANCE_DIR": str(tmp_path_factory.mktemp("console-instance")),
    }
    for command in (["db", "upgrade"], ["demo", "seed", "--size", "small"]):
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *command],
                       cwd=PROJECT_ROOT, env=child_env(**env), check=True,
                       capture_output=True, timeout=300)
    return env


@pytest.fixture(scope="session")
def console_url(console_env, artifacts_dir):
    process, base_url = start_gunicorn(console_env, artifacts_dir, workers=2)
    yield base_url
    process.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture(params=list(VIEWPORTS))
def page(request, browser, console_url):
    """A fresh browser context (no cookies) at a phone's and a desktop's width."""
    context = browser.new_context(viewport=VIEWPORTS[request.param], locale="zh-CN",
                                  base_url=console_url)
    tab = context.new_page()
    tab.viewport_name = request.param
    yield tab
    context.close()


def sign_in(page, username: str = "demo-owner", password: str = PASSWORD) -> None:
    page.goto("/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{page.viewport_name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
