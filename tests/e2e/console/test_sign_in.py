"""Signing in to the console in a real browser."""

from __future__ import annotations

from tests.e2e.console.conftest import screenshot, sign_in


def test_a_merchant_signs_in_and_lands_on_the_dashboard(page):
    sign_in(page)
    page.wait_for_url("**/console/dashboard")
    assert page.inner_text("h1") == "概览"
    assert page.locator("nav.tabs a").count() == 7  # the owner sees every section
    screenshot(page, "dashboard")


def test_a_wrong_password_is_refused_on_the_page(page):
    sign_in(page, password="not-the-password")
    assert page.locator(".flash.error").inner_text() == "用户名或密码不正确。"
    screenshot(page, "sign-in-refused")


def test_the_session_cookie_is_http_only_and_same_site(page):
    sign_in(page)
    page.wait_for_url("**/console/dashboard")
    cookie = next(c for c in page.context.cookies() if c["name"] == "fenxiao_console")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
