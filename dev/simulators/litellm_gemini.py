"""litellm-gemini dialect (doc 000): a LiteLLM proxy passing the Gemini API through.

    POST /gemini/v1beta/models/{model}:predictLongRunning      x-goog-api-key
    GET  /gemini/v1beta/models/{model}/operations/{id}
    GET  /gemini/download/v1beta/files/{file}:download?alt=media

Same operations as the Gemini API (shared code in gemini.py). Two differences
the doc spells out: the proxy's own key goes in x-goog-api-key (LiteLLM answers
401 itself when it is missing or wrong), and the video URI in the operation is
Google's own https://generativelanguage.googleapis.com/... URI, which the client
must rewrite to the proxy's /gemini/download/... route.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from . import media
from .common import base_url, bearer, expected_key, google_error, state
from .gemini import add_google_ai_routes

DIALECT = "litellm-gemini"
GOOGLE_FILES = "https://generativelanguage.googleapis.com/v1beta/files/"

bp = Blueprint("litellm_gemini", __name__)


def check_auth() -> Response | None:
    # LiteLLM takes its key from x-goog-api-key on Google routes (as the doc
    # uses), ?key= or a Bearer header.
    key = request.headers.get("x-goog-api-key") or request.args.get("key") or bearer()
    if not key:
        return google_error(401, "Authentication Error, No api key passed in.")
    if key != expected_key(DIALECT):
        return google_error(401, "Authentication Error, Invalid proxy server token passed. "
                                 "Unable to find token in cache or `LiteLLM_VerificationTokenTable`")
    return None


def _google_uri(file_id: str) -> str:
    return f"{GOOGLE_FILES}{file_id}:download?alt=media"


def _proxy_download(file_id: str) -> str:
    return f"{base_url()}/gemini/download/v1beta/files/{file_id}:download?alt=media"


add_google_ai_routes(bp, DIALECT, "/gemini/v1beta", check_auth, _google_uri, _proxy_download)


@bp.get("/gemini/download/v1beta/files/<file_id>:download")
def download(file_id: str):
    denied = check_auth()
    if denied is not None:
        state().record(DIALECT, "download", None, denied.status_code)
        return denied
    return media.download(
        DIALECT, file_id,
        # Google's answer for a file past its 2-day retention, passed through.
        expired=lambda: google_error(403, f"You do not have permission to access the File "
                                          f"{file_id} or it may not exist."),
        not_found=lambda: google_error(404, f"File {file_id} not found."))
