"""The console in a real browser: Playwright driving Debian's Chromium against gunicorn
serving the demo data (`flask demo seed`) on a database of its own."""

from __future__ import annotations

import json
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


def run_in_console(console_env: dict, *args: str) -> str:
    """A command of ours (``python -m ...``) on the console's database; its standard output."""
    done = subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT,
                          env=child_env(**console_env), check=True, capture_output=True,
                          text=True, timeout=120)
    return done.stdout


def prepare(console_env: dict, need: str) -> dict:
    """What a test needs in the demo database (see demo_world.py), as ids."""
    output = run_in_console(console_env, "-m", "tests.e2e.console.demo_world", need)
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def other_shop(console_env) -> dict:
    """A second merchant in the console's database with its owner, who must see nothing of
    the demo shop's."""
    owner = {"username": "other-owner", "password": PASSWORD}
    output = run_in_console(console_env, "-m", "flask", "--app", "wsgi", "merchants", "create",
                            "--name", "别家小店", "--owner-username", owner["username"],
                            "--owner-password", owner["password"])
    return {**json.loads(output.strip().splitlines()[-1]), **owner}


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


def signed_in(page, username: str = "demo-owner") -> None:
    """Signed in and on the dashboard (the sign-in's redirect has finished)."""
    sign_in(page, username)
    page.wait_for_url("**/console/dashboard")


def csrf_token(page) -> str:
    """The CSRF token of the page's session, for requests a page's forms would not send."""
    return page.locator("input[name=csrf_token]").first.input_value()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{page.viewport_name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
