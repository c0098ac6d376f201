"""The H5 landing page of a share link, ``/s/<token>``: HTML for people, not JSON.

A GET records the visit; a HEAD (link previews, uptime checks) answers the same status and
headers without counting as an opening. Unknown tokens get a friendly page, not the JSON error.
Openings are limited per client IP (``SHARE_VISIT_RATE_LIMIT_IP``, its own count apart from the
mini-program's); over it, 429 in the JSON error shape with Retry-After.
"""

from __future__ import annotations

from flask import make_response, render_template, request, url_for
from flask_smorest import Blueprint

from app import clients
from app.errors import NotFound
from app.extensions import limiter, redis
from app.services import share_links
from app.services.attribution import VisitContext

blp = Blueprint("share_landing", __name__, description="Share landing page (HTML)")

# Inline styles only and no scripts at all: the page loads nothing from anywhere else.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self' https: http: data:; "
                               "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Every opening must reach us to be recorded.
    "Cache-Control": "no-store",
}


@blp.route("/s/<token>", methods=["GET"])
@limiter.limit(lambda: clients.settings().share_visit_rate_limit_ip)
@blp.doc(responses={200: {"description": "The landing page (text/html)"},
                    404: {"description": "Unknown link (a friendly text/html page)"}})
def landing(token):
    """Record the visit and show the shared product or merchant, its code and an
    "open the mini-program" button (the URL Link, where there is one)."""
    context = VisitContext(channel="h5", ip_hash=_ip_hash(),
                           user_agent=request.headers.get("User-Agent", ""))
    page = share_links.open_landing(token=token, context=context, redis_client=redis.client,
                                    record=request.method != "HEAD")
    wxacode_url = url_for("mp_share_links.wxacode", merchant_id=page.merchant_id,
                          token=page.token)
    return _html(render_template("share/landing.html", page=page, wxacode_url=wxacode_url), 200)


@blp.errorhandler(NotFound)
def not_found(error):
    return _html(render_template("share/not_found.html"), 404)


def _ip_hash() -> str:
    # Keyed hash: visits from one address can be grouped without storing the address.
    return clients.secret_box().lookup_hash(request.remote_addr) if request.remote_addr else ""


def _html(body: str, status: int):
    response = make_response(body, status)
    response.headers.update(SECURITY_HEADERS)
    return response
