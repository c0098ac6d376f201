"""Share images: the wxacode (from WeChat, once), the poster (Pillow, CJK text), product images."""

from __future__ import annotations

import base64
import contextlib
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image, ImageDraw, ImageFont
from pyzbar.pyzbar import decode
from sqlalchemy import func, select

from app.database import transaction
from app.domain.share_token import new_token
from app.extensions import db
from app.integrations import poster
from app.models import Product, ShareLink, ShareLinkImage
from tests.factories import make_member, make_merchant, make_user

DEAD_WECHAT = "http://127.0.0.1:9"  # the discard port: nothing listens there
PUBLIC = "https://shop.example.com"


def png_of(color, size=(400, 300), fmt="PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def data_url(raw: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def image_path(link: ShareLink, kind: str) -> str:
    return f"/api/mp/v1/merchants/{link.merchant_id}/share-links/{link.token}/{kind}.png"


def make_link(*, product_fields: dict | None = None, nickname: str = "小明") -> ShareLink:
    merchant = make_merchant(name="鲜果小铺")
    member = make_member(merchant, user=make_user(nickname=nickname))
    with transaction(db.session):
        product = None
        if product_fields is not None:
            product = Product(merchant_id=merchant.id, **{"title": "有机草莓", "price_fen": 1990,
                                                          **product_fields})
            db.session.add(product)
            db.session.flush()
        link = ShareLink(merchant_id=merchant.id, distributor_id=member.id,
                         token=new_token(merchant.id), page="pages/product/detail",
                         product_id=product.id if product else None)
        db.session.add(link)
    return link


def decoded(png: bytes) -> list[str]:
    return [symbol.data.decode() for symbol in decode(Image.open(io.BytesIO(png)))]


def cached_kinds() -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(select(ShareLinkImage.kind)))


def test_the_wxacode_carries_the_token_as_its_scene(client, app_context):
    link = make_link()
    response = client.get(image_path(link, "wxacode"))
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert "max-age=31536000" in response.headers["Cache-Control"]
    assert decoded(response.data) == [link.token]


def test_the_wxacode_is_asked_of_wechat_once_then_served_from_the_table(client, app_context,
                                                                         make_app):
    link = make_link()
    first = client.get(image_path(link, "wxacode")).data
    assert cached_kinds() == ["wxacode"]
    # With WeChat unreachable the code is still served: it no longer comes from WeChat.
    down = make_app(wechat_api_base_url=DEAD_WECHAT).test_client()
    again = down.get(image_path(link, "wxacode"))
    assert again.status_code == 200 and again.data == first
    assert db.session.scalar(select(func.count()).select_from(ShareLinkImage)) == 1


def test_without_wechat_an_uncached_code_is_a_502(app_context, make_app):
    link = make_link()
    down = make_app(wechat_api_base_url=DEAD_WECHAT).test_client()
    response = down.get(image_path(link, "wxacode"))
    assert response.status_code == 502 and response.get_json()["code"] == "upstream_error"
    assert cached_kinds() == []


def test_the_poster_has_the_designed_size_and_a_code_that_decodes(client, app_context, make_app):
    link = make_link(product_fields={"image_urls": [data_url(png_of((200, 30, 30)))]})
    response = client.get(image_path(link, "poster"))
    assert response.status_code == 200 and response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    assert image.size == (poster.WIDTH, poster.HEIGHT) == (750, 1334)
    assert decoded(response.data) == [link.token]
    assert image.convert("RGB").getpixel((375, 375)) == (200, 30, 30)  # the product image
    assert cached_kinds() == ["poster", "wxacode"]
    down = make_app(wechat_api_base_url=DEAD_WECHAT).test_client()
    assert down.get(image_path(link, "poster")).data == response.data


@pytest.mark.parametrize("urls", [[], ["data:image/png;base64,bm90IGFuIGltYWdl"],
                                  ["ftp://example.com/a.png"], [42]])
def test_a_missing_or_broken_product_image_gives_a_plain_panel(client, app_context, urls):
    link = make_link(product_fields={"image_urls": urls})
    response = client.get(image_path(link, "poster"))
    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.data)).convert("RGB")
    assert image.getpixel((375, 375)) == poster.PLACEHOLDER
    assert decoded(response.data) == [link.token]


def test_a_merchant_link_without_product_gets_a_poster(client, app_context):
    response = client.get(image_path(make_link(nickname=""), "poster"))
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.data)).size == (750, 1334)


def test_a_cjk_font_is_found_and_draws_chinese_as_distinct_glyphs():
    path = poster.find_cjk_font()
    assert path in poster.CJK_FONT_PATHS
    font = ImageFont.truetype(path, 48)
    bitmaps = [glyph(font, char) for char in "分销海报测试"]
    assert all(any(bitmap) for bitmap in bitmaps)
    assert len(set(bitmaps)) == 6
    # The check can fail: Pillow's built-in font draws every one of them as the same box.
    fallback = ImageFont.load_default(48)
    assert glyph(fallback, "分") == glyph(fallback, "销")


def test_without_a_cjk_font_posters_still_render_and_say_so_once(monkeypatch, caplog):
    monkeypatch.setattr(poster, "CJK_FONT_PATHS", ("/nonexistent/font.ttc",))
    poster.find_cjk_font.cache_clear()
    try:
        assert poster.find_cjk_font() is None
        png = poster.render_poster(qr_png=png_of("white", size=(430, 430)), product_png=None,
                                   title="分销", price_fen=1, distributor_name="小明",
                                   merchant_name="鲜果小铺")
        assert Image.open(io.BytesIO(png)).size == (750, 1334)
    finally:
        poster.find_cjk_font.cache_clear()
    warnings = [r for r in caplog.records if "no CJK font" in r.getMessage()]
    assert len(warnings) == 1


def glyph(font, char: str) -> bytes:
    image = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(image).text((4, 4), char, font=font, fill=255)
    return image.tobytes()


def test_the_title_is_drawn_as_text_in_the_poster():
    qr = png_of("white", size=(430, 430))
    one = poster.render_poster(qr_png=qr, product_png=None, title="分销", price_fen=1990,
                               distributor_name="小明", merchant_name="鲜果小铺")
    other = poster.render_poster(qr_png=qr, product_png=None, title="海报", price_fen=1990,
                                 distributor_name="小明", merchant_name="鲜果小铺")
    title_box = (0, poster.PANEL, poster.WIDTH, poster.PANEL + 150)
    crop = [Image.open(io.BytesIO(png)).crop(title_box).tobytes() for png in (one, other)]
    assert crop[0] != crop[1]


@pytest.mark.parametrize("fen,text", [
    (0, "¥0.00"), (1, "¥0.01"), (9, "¥0.09"), (10, "¥0.10"), (99, "¥0.99"), (100, "¥1.00"),
    (101, "¥1.01"), (1990, "¥19.90"), (123456789, "¥1234567.89"),
    (10**18 + 1, "¥10000000000000000.01"), (-1990, "-¥19.90"),
])
def test_prices_are_formatted_from_fen_exactly(fen, text):
    assert poster.yuan_text(fen) == text


def test_our_own_static_images_are_read_from_disk(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "berry.png").write_bytes(png_of("red"))
    (tmp_path.parent / "secret.png").write_bytes(b"not yours")
    load = lambda url: poster.load_product_image(url, public_base_url=PUBLIC,  # noqa: E731
                                                 static_dir=tmp_path)
    assert load(f"{PUBLIC}/static/img/berry.png") == png_of("red")
    assert load("/static/img/berry.png") == png_of("red")
    assert load(f"{PUBLIC}/static/../secret.png") is None
    assert load(f"{PUBLIC}/static/img/missing.png") is None


class _Images(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/slow.png":
            time.sleep(6)
        if self.path == "/redirect.png":
            self.send_response(302)
            self.send_header("Location", "/ok.png")
            self.end_headers()
            return
        body = {"/ok.png": png_of("blue"), "/declared-huge.png": b"small", "/slow.png": b"",
                "/streamed-huge.png": b"\0" * (poster.MAX_IMAGE_BYTES + 1)}.get(self.path)
        self.send_response(200 if body is not None else 404)
        if self.path == "/declared-huge.png":
            self.send_header("Content-Length", str(poster.MAX_IMAGE_BYTES + 1))
        self.end_headers()
        # The client hangs up on oversized bodies: that is the behaviour under test.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@pytest.fixture
def image_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def fetch(url: str, **options):
    return poster.load_product_image(url, public_base_url=PUBLIC, static_dir=None, **options)


def test_remote_images_are_fetched_within_their_limits(image_server):
    assert fetch(f"{image_server}/ok.png", allow_private_hosts=True) == png_of("blue")
    assert fetch(f"{image_server}/missing.png", allow_private_hosts=True) is None
    assert fetch(f"{image_server}/redirect.png", allow_private_hosts=True) is None
    assert fetch(f"{image_server}/streamed-huge.png", allow_private_hosts=True) is None
    assert fetch(f"{image_server}/declared-huge.png", allow_private_hosts=True) is None


def test_a_slow_image_server_is_given_up_after_the_timeout(image_server):
    started = time.monotonic()
    assert fetch(f"{image_server}/slow.png", allow_private_hosts=True) is None
    assert time.monotonic() - started < 5


def test_product_images_are_never_fetched_from_private_addresses(image_server):
    # Merchant staff type these URLs: the server must not be made to call its own network.
    assert fetch(f"{image_server}/ok.png") is None
    assert fetch("http://169.254.169.254/latest/meta-data/") is None


def test_data_urls_over_the_cap_are_refused():
    assert fetch(data_url(png_of("green"))) == png_of("green")
    assert fetch(data_url(b"\0" * (poster.MAX_IMAGE_BYTES + 1))) is None
