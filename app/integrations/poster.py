"""Share posters: a PNG with the product, its price, the distributor's name and the wxacode.

Rendering is a pure function of bytes and strings (``render_poster``); loading the product
image is the only I/O, and it never fails a poster: anything wrong gives a plain panel.
Chinese needs a real CJK font; without one Pillow draws every character as the same box.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import ipaddress
import logging
import socket
import time
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

import requests
from PIL import Image, ImageDraw, ImageFont, ImageOps

log = logging.getLogger("fenxiao.poster")

WIDTH, HEIGHT = 750, 1334
PANEL = 750  # the product image is a square across the top
QR_SIZE = 260
FETCH_TIMEOUT_SECONDS = 3.0
MAX_IMAGE_BYTES = 5 * 1024 * 1024

# Debian/Ubuntu paths, most complete first (fonts-noto-cjk, fonts-wqy-microhei, fonts-droid).
CJK_FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)

INK, GREY, RED = (34, 34, 34), (136, 136, 136), (228, 57, 60)
PLACEHOLDER = (246, 226, 208)


def yuan_text(fen: int) -> str:
    """``1990`` → ``"¥19.90"``: integer arithmetic only, so no amount is ever off by a fen."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}¥{yuan}.{cents:02d}"


@functools.cache
def find_cjk_font() -> str | None:
    """The first installed CJK font file, or None (warned once per process)."""
    for path in CJK_FONT_PATHS:
        if Path(path).is_file():
            return path
    log.warning("no CJK font found; posters will show boxes for Chinese. "
                "Install fonts-noto-cjk.", extra={"searched": list(CJK_FONT_PATHS)})
    return None


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Made per poster (about 1 ms): a FreeType face is not safe to share between threads.
    path = find_cjk_font()
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(path, size, index=_simplified_face(path))


@functools.cache
def _simplified_face(path: str) -> int:
    """Noto's collections start with the Japanese face; pick the Simplified Chinese one so
    hanzi take their mainland forms."""
    if not path.endswith(".ttc"):
        return 0
    for index in range(10):
        try:
            name = ImageFont.truetype(path, 12, index=index).getname()[0]
        except OSError:
            break
        if name.endswith(" SC"):
            return index
    return 0


def render_poster(*, qr_png: bytes, product_png: bytes | None, title: str,
                  price_fen: int | None, distributor_name: str, merchant_name: str) -> bytes:
    """The poster as PNG, WIDTH × HEIGHT. ``product_png`` may be any image format Pillow
    reads; when it is None or unreadable a coloured panel takes its place."""
    poster = Image.new("RGB", (WIDTH, HEIGHT), "white")
    poster.paste(_product_panel(product_png), (0, 0))
    draw = ImageDraw.Draw(poster)
    title_font = _font(40)
    for number, line in enumerate(_wrap(title, title_font, WIDTH - 80, max_lines=2)):
        draw.text((40, PANEL + 36 + 56 * number), line, font=title_font, fill=INK)
    if price_fen is not None:
        draw.text((40, PANEL + 160), yuan_text(price_fen), font=_font(52), fill=RED)
    draw.line((40, PANEL + 250, WIDTH - 40, PANEL + 250), fill=(230, 230, 230), width=2)
    _draw_footer(draw, distributor_name=distributor_name, merchant_name=merchant_name)
    qr = Image.open(io.BytesIO(qr_png)).convert("RGB").resize((QR_SIZE, QR_SIZE), Image.NEAREST)
    poster.paste(qr, (WIDTH - 40 - QR_SIZE, HEIGHT - 40 - QR_SIZE))
    out = io.BytesIO()
    poster.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _draw_footer(draw: ImageDraw.ImageDraw, *, distributor_name: str,
                 merchant_name: str) -> None:
    text_width = WIDTH - 80 - QR_SIZE - 30
    top = HEIGHT - 40 - QR_SIZE
    name_font, shop_font = _font(34), _font(28)
    name = _wrap(distributor_name, name_font, text_width - name_font.getlength(" 为你推荐"),
                 max_lines=1)[0]
    draw.text((40, top + 40), f"{name} 为你推荐", font=name_font, fill=INK)
    shop = _wrap(merchant_name, shop_font, text_width, max_lines=1)[0]
    draw.text((40, top + 110), shop, font=shop_font, fill=GREY)
    draw.text((40, top + 180), "长按识别小程序码", font=_font(26), fill=GREY)


def _product_panel(product_png: bytes | None) -> Image.Image:
    if product_png:
        try:
            with Image.open(io.BytesIO(product_png)) as image:
                image = ImageOps.exif_transpose(image).convert("RGB")
                return ImageOps.fit(image, (PANEL, PANEL))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            log.warning("product image unreadable; using a placeholder",
                        extra={"error": type(error).__name__})
    return Image.new("RGB", (PANEL, PANEL), PLACEHOLDER)


def _wrap(text: str, font, width: float, *, max_lines: int) -> list[str]:
    """Break by character (Chinese has no spaces); the last line ends in … when cut."""
    lines, line = [], ""
    for char in text.replace("\n", " "):
        if font.getlength(line + char) > width:
            lines.append(line)
            line = char
        else:
            line += char
    lines.append(line)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1]
        lines = lines[:max_lines - 1] + [last + "…"]
    return lines


def load_product_image(url: str, *, public_base_url: str, static_dir: Path | None,
                       allow_private_hosts: bool = False) -> bytes | None:
    """The bytes of a product image, or None (logged) when it cannot be had.

    Our own ``/static`` files are read from disk, ``data:`` URLs decoded, other http(s) URLs
    fetched: 3 s timeout, 5 MB cap, no redirects, and — since image URLs are typed in by
    merchant staff — never from a private or loopback address unless ``allow_private_hosts``.
    """
    own_static = public_base_url.rstrip("/") + "/static/"
    try:
        if url.startswith("data:"):
            return _from_data_url(url)
        if url.startswith((own_static, "/static/")):
            relative = url.removeprefix(public_base_url.rstrip("/")).removeprefix("/static/")
            return _from_static(static_dir, relative)
        if urlsplit(url).scheme in ("http", "https"):
            return _fetch(url, allow_private_hosts=allow_private_hosts)
        raise ValueError("unsupported image URL")
    except (OSError, ValueError, requests.RequestException) as error:
        log.warning("product image not loaded", extra={"error": f"{type(error).__name__}: "
                                                                f"{error}"[:200]})
    return None


def _from_data_url(url: str) -> bytes:
    header, _, payload = url.removeprefix("data:").partition(",")
    if len(payload) > 3 * MAX_IMAGE_BYTES:  # no encoding is longer than three characters a byte
        raise ValueError("data URL over 5 MB")
    try:
        data = base64.b64decode(payload) if header.endswith(";base64") \
            else unquote_to_bytes(payload)
    except binascii.Error as error:
        raise ValueError("bad base64 in data URL") from error
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError("data URL over 5 MB")
    return data


def _from_static(static_dir: Path | None, relative: str) -> bytes:
    if static_dir is None:
        raise ValueError("no static folder")
    root = static_dir.resolve()
    path = (root / relative.split("?")[0]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise ValueError("not a static file")
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise ValueError("static image over 5 MB")
    return path.read_bytes()


def _fetch(url: str, *, allow_private_hosts: bool) -> bytes:
    if not allow_private_hosts:
        _refuse_private_host(urlsplit(url).hostname or "")
    deadline = time.monotonic() + FETCH_TIMEOUT_SECONDS
    with requests.get(url, timeout=FETCH_TIMEOUT_SECONDS, stream=True,
                      allow_redirects=False) as response:
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        if int(response.headers.get("Content-Length") or 0) > MAX_IMAGE_BYTES:
            raise ValueError("image over 5 MB")
        body = bytearray()
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > MAX_IMAGE_BYTES:
                raise ValueError("image over 5 MB")
            # requests' timeout is per read; a slow drip must not hold the poster up.
            if time.monotonic() > deadline:
                raise ValueError("image download over 3 s")
    return bytes(body)


def _refuse_private_host(host: str) -> None:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    for info in infos:
        if not ipaddress.ip_address(info[4][0].split("%")[0]).is_global:
            raise ValueError("image host is not a public address")
