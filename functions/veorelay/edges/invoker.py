"""Who may call an internal function: the invoker identity (VEO_TASKS_SERVICE_ACCOUNT), with a
Google-signed OIDC token for that function's own URL (VEO_<ENTRY>_URL). Every task target, the
sweep and the request-object handler check it first, in code, in addition to IAM (run.invoker):

* no token, or not a JWT: 401, nothing runs;
* a token that is not one we accept (another signer, expired, another issuer, another
  function's URL, another service account): 403, nothing runs;
* the signing keys cannot be fetched: 503, so the caller's queue tries again later;
* the function does not know its URL or the invoker: 500 (a deployment error), nothing runs.

The X-CloudTasks-* and X-CloudScheduler headers are no part of this: anyone can send them. They
are read afterwards as what they are, the queue's description of the delivery (queue name,
retry count), for logs and the finalize step's attempt count.
"""
from __future__ import annotations

import flask

from veorelay.gcp import logs
from veorelay.gcp.oidc import CertsUnavailable, TokenRefused
from veorelay.runtime import Runtime

_CODES = {401: "unauthenticated", 403: "forbidden", 500: "misconfigured", 503: "unavailable"}
_MESSAGES = {
    401: "this function needs the invoker's OIDC token (Authorization: Bearer)",
    403: "this function answers only the invoker's OIDC token for its own URL",
    500: "this function does not know its own URL or its invoker",
    503: "the token's signing keys could not be fetched; try again",
}


def refusal(request: flask.Request, rt: Runtime, entry_point: str) -> flask.Response | None:
    """None when the caller is the invoker with a token for this function; otherwise the
    answer to give (and nothing may run)."""
    settings = rt.settings
    own_url = settings.internal_urls.get(entry_point)
    if not own_url or not settings.tasks_service_account:
        logs.error("internal function refuses every call: VEO_TASKS_SERVICE_ACCOUNT or its own URL is not set",
                   entry_point=entry_point, url_env=f"VEO_{entry_point.upper()}_URL")
        return _answer(500)
    try:
        rt.invoker_tokens.verify(request.headers.get("Authorization"), own_urls=(own_url,),
                        email=settings.tasks_service_account, certs_url=settings.oidc_certs_url)
    except TokenRefused as refused:
        logs.warning("internal call refused", entry_point=entry_point, status=refused.status, reason=refused.reason,
                     queue=(request.headers.get("X-CloudTasks-QueueName") or "")[:100],
                     user_agent=(request.headers.get("User-Agent") or "")[:100])
        return _answer(refused.status)
    except CertsUnavailable as exc:
        logs.warning("internal call not checked: no signing keys", entry_point=entry_point, error_message=str(exc))
        response = _answer(503)
        response.headers["Retry-After"] = "10"
        return response
    return None


def require(request: flask.Request, rt: Runtime, entry_point: str) -> None:
    """refusal() for a function that returns no response (a CloudEvent function): the answer
    is raised (werkzeug's HTTPException), so functions-framework sends it as is, not as a crash."""
    refused = refusal(request, rt, entry_point)
    if refused is not None:
        flask.abort(refused)


def _answer(status: int) -> flask.Response:
    response = flask.make_response(flask.jsonify({"status": _CODES[status], "message": _MESSAGES[status]}), status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="veo-relay internal"'
    return response
