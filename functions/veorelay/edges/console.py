"""GET /console on the public `api` function: a one-page console for one client, served by the
function itself (HTML, JS and CSS are package data in edges/console_assets/, shipped with the
functions' source; no CDN, no build step).

The page needs no key to load: it asks for the client's API key once, keeps it in the tab's
sessionStorage and sends it only as `Authorization: Bearer` on fetch() calls to this same API
(GET /jobs, GET /jobs/{id}/events read through a ReadableStream, GET /usage, and
GET /v1/videos/{id}/content for posters and videos, played from blob: URLs). The key is never
put in a URL, so it reaches no access log, history or Referer.

Every answer carries a Content-Security-Policy that allows only this origin (scripts, styles,
fetches) and blob: for the images and videos the page itself fetched; nothing may frame it.
"""
from __future__ import annotations

import functools
from importlib import resources

import flask

from veorelay.core.errors import ApiError, ErrorCode

PAGE_PATH = "/console"
ASSET_PREFIX = "/console/"
# Served file name -> content type. The page refers to them relatively ("console/console.js"),
# so the console works under any path prefix (a gateway, a 1st-gen cloudfunctions.net/api URL).
ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
PAGE_FILE = "console.html"
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",  # the API itself: listing, events, usage, video bytes
    "img-src 'self' blob:",  # posters: fetched with the key, shown from object URLs
    "media-src 'self' blob:",  # videos: likewise (no bucket or signed-URL origin is needed)
    "base-uri 'none'",
    "form-action 'none'",  # the key form is never submitted anywhere: JavaScript reads it
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidated each time: a deploy shows at once
}


def serves(path: str) -> bool:
    """Whether `path` is the console page or one of its files."""
    return path == PAGE_PATH or path.startswith(ASSET_PREFIX)


def respond(request: flask.Request) -> flask.Response:
    """The page, one of its files, or a 404 (405 for a method other than GET or HEAD)."""
    if request.method not in ("GET", "HEAD"):
        raise ApiError(405, ErrorCode.INVALID_REQUEST, "use GET here")
    if request.path == ASSET_PREFIX:
        # /console/ would resolve the page's relative file names one folder too deep.
        return flask.Response(status=308, headers={"Location": "../console", **SECURITY_HEADERS})
    if request.path == PAGE_PATH:
        name, content_type = PAGE_FILE, "text/html; charset=utf-8"
    else:
        name = request.path[len(ASSET_PREFIX):]
        if name not in ASSETS:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"no such console file: {name}")
        content_type = ASSETS[name]
    return flask.Response(_read(name), status=200, content_type=content_type, headers=SECURITY_HEADERS)


@functools.cache
def _read(name: str) -> bytes:
    """A file of edges/console_assets/ (read once per instance)."""
    return resources.files("veorelay.edges").joinpath("console_assets", name).read_bytes()
