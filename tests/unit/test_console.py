"""The console's edge (edges/console.py) and its files (edges/console_assets/), without a browser:
what is served and with which policy, that the page needs nothing its policy forbids, and that
every way a job can fail has a sentence in plain words."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import flask
import pytest

from veorelay.core.errors import ApiError, ErrorCode
from veorelay.edges import console

ASSETS = console.resources.files("veorelay.edges").joinpath("console_assets")
# Codes no job records as its error: refusals of a request, answered before any job exists.
NOT_JOB_ERRORS = {ErrorCode.UNAUTHENTICATED, ErrorCode.NOT_FOUND, ErrorCode.CONFLICT, ErrorCode.PAYLOAD_TOO_LARGE}


def get(path: str, method: str = "GET") -> flask.Response:
    with flask.Flask(__name__).test_request_context(path, method=method) as ctx:
        return console.respond(ctx.request)


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def page_tags() -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(ASSETS.joinpath(console.PAGE_FILE).read_text())
    return parser.tags


def test_the_page_and_its_files_are_served_with_the_policy():
    page = get("/console")
    assert page.status_code == 200 and page.content_type == "text/html; charset=utf-8"
    assert b"<title>veo-relay console</title>" in page.get_data()
    for name, content_type in console.ASSETS.items():
        answer = get(f"/console/{name}")
        assert (answer.status_code, answer.content_type) == (200, content_type)
        assert answer.get_data() == ASSETS.joinpath(name).read_bytes()
    for answer in (page, get("/console/console.js")):
        assert answer.headers["Content-Security-Policy"] == console.CONTENT_SECURITY_POLICY
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_the_policy_allows_this_origin_only():
    directives = dict(d.split(" ", 1) for d in console.CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "connect-src"):
        assert directives[name] == "'self'", name
    assert directives["img-src"] == directives["media-src"] == "'self' blob:"  # what the page fetched itself
    assert directives["frame-ancestors"] == directives["form-action"] == directives["base-uri"] == "'none'"


def test_the_page_needs_nothing_the_policy_forbids():
    tags = page_tags()
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    assert scripts and all(attrs.get("src") for attrs in scripts)  # no inline script: script-src 'self' blocks it
    assert not [tag for tag, attrs in tags if "style" in attrs or any(k.startswith("on") for k in attrs)]
    referenced = [attrs.get("src") or attrs.get("href") for tag, attrs in tags if tag in ("script", "link")]
    # Relative, and each a file the edge serves: the page works under any path prefix.
    assert sorted(referenced) == sorted(f"console/{name}" for name in console.ASSETS), referenced
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in tags
    key_input = next(attrs for tag, attrs in tags if tag == "input" and attrs.get("id") == "key")
    assert key_input["type"] == "password" and "name" not in key_input  # never serialised into a form submission
    script = ASSETS.joinpath("console.js").read_text()
    assert "innerHTML" not in script and "eval(" not in script  # a prompt is text, never markup
    assert "?key=" not in script and "token=" not in script  # the key goes in the Authorization header only


def test_every_job_error_has_plain_words():
    script = ASSETS.joinpath("console.js").read_text()
    block = script[script.index("const PLAIN_ERRORS = {"):]
    block = block[: block.index("};")]
    worded = set(re.findall(r"^\s+(\w+): \"[A-Z][^\"]+\.\",?$", block, re.MULTILINE))
    assert worded == {str(code) for code in ErrorCode} - {str(code) for code in NOT_JOB_ERRORS}


def test_other_paths_and_methods_are_refused():
    assert console.serves("/console") and console.serves("/console/console.js")
    assert not console.serves("/consoles") and not console.serves("/jobs")
    with pytest.raises(ApiError) as missing:
        get("/console/../config.py")
    assert missing.value.status == 404
    with pytest.raises(ApiError) as missing:
        get("/console/console.html")  # the page only at /console
    assert missing.value.status == 404
    with pytest.raises(ApiError) as method:
        get("/console", "POST")
    assert method.value.status == 405
    slash = get("/console/")
    assert (slash.status_code, slash.headers["Location"]) == (308, "../console")
