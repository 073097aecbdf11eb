"""The public `provider_events` function's edge: a provider's completion event, verified before
anything is read, then handed to steps/events_in.py.

Which signature a request must carry is told by what it carries (gcp/push_auth.py):

* `Authorization: Bearer` and a Pub/Sub push body: Vertex AI's Pub/Sub notification, the
  subscription's OIDC token for this function's URL (VEO_PROVIDER_EVENTS_URL) naming
  VEO_PUBSUB_PUSH_SERVICE_ACCOUNT;
* a JWT in `webhook-signature`: a Gemini API per-request webhook (`?job=<id>`: the URL veo-relay
  registered for that job, which the JWT's audience must be);
* otherwise a Gemini API static webhook, signed with VEO_GEMINI_WEBHOOK_SECRET.

Answers: 401 for any signature that does not verify, with nothing read from the body and
nothing written; 413 for a body over MAX_EVENT_BYTES; 503 (Retry-After) when the signing keys or
Firestore do not answer, so the sender delivers again; 200 otherwise, also for an event that
changes nothing (unknown, late, duplicate), so the sender does not retry what cannot succeed.
"""
from __future__ import annotations

import flask

from veorelay.core.errors import ApiError, ErrorCode, TransientError
from veorelay.core.push_events import ProviderEvent, gemini_event, job_id_of, pubsub_event, request_webhook_url
from veorelay.edges.reading import body_deadline, read_up_to
from veorelay.gcp import logs
from veorelay.gcp.oidc import CertsUnavailable, TokenRefused
from veorelay.gcp.push_auth import (
    PushRefused,
    body_json,
    header,
    looks_like_jwt,
    verify_request_jwt,
    verify_static,
)
from veorelay.runtime import Runtime
from veorelay.steps import events_in

MAX_EVENT_BYTES = 64 * 1024  # a completion event is a few hundred bytes


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    if request.method != "POST":
        return _error(405, ErrorCode.INVALID_REQUEST, "provider events are POSTed")
    if (request.content_length or 0) > MAX_EVENT_BYTES:
        return _error(413, ErrorCode.PAYLOAD_TOO_LARGE, f"an event is at most {MAX_EVENT_BYTES} bytes")
    try:
        with body_deadline(request, rt.settings.body_timeout_s):
            body = read_up_to(request, MAX_EVENT_BYTES + 1)
    except ApiError as exc:
        return _error(exc.status, exc.code, exc.message)
    if len(body) > MAX_EVENT_BYTES:
        return _error(413, ErrorCode.PAYLOAD_TOO_LARGE, f"an event is at most {MAX_EVENT_BYTES} bytes")
    try:
        event = verified_event(request, body, rt)
    except PushRefused as refused:
        logs.warning("provider event refused", reason=refused.reason, scheme=scheme_of(request),
                     user_agent=(request.headers.get("User-Agent") or "")[:100])
        response = _error(401, ErrorCode.UNAUTHENTICATED, "the event's signature does not verify")
        response.headers["WWW-Authenticate"] = 'Bearer realm="veo-relay provider events"'
        return response
    except CertsUnavailable as exc:
        logs.warning("provider event not checked: no signing keys", error_message=str(exc))
        return _retry_later("the signing keys could not be fetched; try again")
    with logs.context(job_id=event.job_id, project=rt.settings.project):
        try:
            outcome = events_in.receive(rt, event)
        except TransientError as exc:
            logs.warning("provider event will be delivered again", code=exc.code, error_message=exc.message)
            return _retry_later(exc.message)
    return flask.make_response(flask.jsonify({"status": "ok", "outcome": outcome}), 200)


def scheme_of(request: flask.Request) -> str:
    """Which way the event claims to come, as verified_event tells them apart: a Pub/Sub push
    (an OIDC token), a per-request Gemini webhook (a JWT), or a static one (an HMAC)."""
    if request.headers.get("Authorization"):
        return "pubsub"
    return "gemini-request" if looks_like_jwt(request.headers.get("webhook-signature") or "") else "gemini-static"


def verified_event(request: flask.Request, body: bytes, rt: Runtime) -> ProviderEvent:
    """The event this request carries, once its signature verified; PushRefused otherwise."""
    push = rt.settings.push
    if not push.events_url:
        raise PushRefused("VEO_PROVIDER_EVENTS_URL is not set: no provider was asked to push")
    headers = {k.lower(): v for k, v in request.headers.items()}
    if request.headers.get("Authorization"):
        if not push.pubsub_service_account:
            raise PushRefused("VEO_PUBSUB_PUSH_SERVICE_ACCOUNT is not set")
        try:
            rt.invoker_tokens.verify(request.headers.get("Authorization"), own_urls=(push.events_url,),
                                     email=push.pubsub_service_account, certs_url=push.oidc_certs_url)
        except TokenRefused as refused:
            raise PushRefused(f"Pub/Sub push token refused: {refused.reason}") from None
        return pubsub_event(body_json(body))
    signature = header(headers, "webhook-signature")
    if looks_like_jwt(signature):
        job_id = job_id_of(request.args.get("job"))
        if job_id is None:
            raise PushRefused("a per-request webhook without its job in the URL")
        audiences = (request_webhook_url(push.events_url, job_id),)  # exactly the URI registered for that job
        claims = verify_request_jwt(signature, audiences=audiences, jwks=rt.push_keys, jwks_url=push.gemini_jwks_url)
        event_id = header(headers, "webhook-id") or str(claims.get("jti") or "")
        return gemini_event(body_json(body), "gemini-request", event_id, job_id)
    verify_static(body, headers, push.gemini_secrets)
    return gemini_event(body_json(body), "gemini-static", header(headers, "webhook-id"))


def _retry_later(message: str) -> flask.Response:
    response = _error(503, ErrorCode.UNAVAILABLE, message)
    response.headers["Retry-After"] = "10"
    return response


def _error(status: int, code: str, message: str) -> flask.Response:
    return flask.make_response(flask.jsonify({"error": {"code": str(code), "message": message, "field": None}}), status)
