"""Completion events pushed the way Google pushes them (docs/PROVIDERS.md "Completion events (push)").

* Gemini API (gemini, and litellm-gemini when it passes `webhookConfig` through): a
  `video.generated` event POSTed when the operation is done,
  - to the request's `webhookConfig.uris` (per-request webhooks): an RS256 JWT in
    `webhook-signature`, `aud` = the URI, signed by the simulator's key, whose JWKS it serves at
    GET /_sim/jwks.json;
  - otherwise to the project's static webhook (POST /v1beta/webhooks registers one and returns
    its `new_signing_secret`, once; or VEO_SIM_GEMINI_WEBHOOK_URL/_SECRET at start): Standard
    Webhooks HMAC with the whsec_ secret.
* Vertex AI: a request with `parameters.pubsubTopic` gets a Pub/Sub push of the finished
  operation ({"name", "done": true}) to the push subscription configured for that topic
  (VEO_SIM_PUBSUB_PUSH = {"<topic>": {"endpoint", "audience", "service_account"}}), with an
  OIDC token signed by the simulator's key (certificates at GET /_sim/oidc/certs, Google's
  `{kid: PEM}` format).

Directives ([sim:...] in the prompt): event_delay=S (seconds after done), event_dup=N (N
deliveries, same webhook-id / messageId), event_drop (none), event_forge (a validly signed
event sent at once, while the operation still runs, besides the real one), event_badsig (the
real event signed with a wrong key or secret). Config `event_drop_rate` drops that fraction of
events at random, `event_delay_s` delays all. Each delivery is in the call log (kind "push",
with its `target`, `mode` and the answer's `status`).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import standardwebhooks
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import Blueprint, jsonify
from google.auth import crypt
from google.auth import jwt as google_jwt

from .common import Operation, SimState, json_body, state

bp = Blueprint("sim_push", __name__)
ATTEMPTS = 3  # a delivery answered 5xx (or not at all) is tried again, as Google retries
GOOGLE_ISSUER = "https://accounts.google.com"
GEMINI_ISSUER = "https://generativelanguage.googleapis.com"


def _b64url(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


class Keys:
    """A throwaway RSA key: JWTs and ID tokens signed with it, its JWKS and its certificate."""

    def __init__(self, label: str) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = hashlib.sha256(der).hexdigest()[:32]
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        self.signer = crypt.RSASigner.from_string(pem, key_id=self.kid)
        numbers = key.public_key().public_numbers()
        self.jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid, "n": _b64url(numbers.n), "e": _b64url(numbers.e)}
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"veo-relay simulator {label} (throwaway)")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
        self.certificate = cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, claims: dict[str, Any]) -> str:
        return google_jwt.encode(self.signer, claims).decode()


_KEYS: dict[str, Keys] = {}
_KEYS_LOCK = threading.Lock()


def keys(name: str) -> Keys:
    """The simulator's signing keys ("google": the real ones; "forger": a key nobody publishes)."""
    with _KEYS_LOCK:
        if name not in _KEYS:
            _KEYS[name] = Keys(name)
        return _KEYS[name]


def push_config(st: SimState) -> dict[str, Any]:
    """Where events go: the static webhook and the Pub/Sub push subscriptions, from the
    environment at first use, then as registered."""
    cfg = st.dialect_state["push"]
    if "static" not in cfg:
        url, secret = os.environ.get("VEO_SIM_GEMINI_WEBHOOK_URL"), os.environ.get("VEO_SIM_GEMINI_WEBHOOK_SECRET")
        cfg["static"] = {"uri": url, "secret": secret} if url and secret else None
        cfg["pubsub"] = json.loads(os.environ.get("VEO_SIM_PUBSUB_PUSH") or "{}")
    return cfg


@bp.get("/_sim/jwks.json")
def jwks():
    return jsonify({"keys": [keys("google").jwk]})


@bp.get("/_sim/oidc/certs")
def certs():
    resp = jsonify({keys("google").kid: keys("google").certificate})
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp


@bp.post("/v1beta/webhooks")
def create_webhook():
    """The WebhookService's create: one static webhook per project here; its secret, once."""
    from .gemini import check_auth  # the Gemini API's own key check

    denied = check_auth()
    if denied is not None:
        return denied
    body = json_body() or {}
    if not isinstance(body.get("uri"), str) or "video.generated" not in (body.get("subscribed_events") or []):
        return jsonify({"error": {"code": 400, "message": "uri and subscribed_events (video.generated) are required",
                                  "status": "INVALID_ARGUMENT"}}), 400
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    st = state()
    push_config(st)["static"] = {"uri": body["uri"], "secret": secret}
    webhook_id = secrets.token_hex(16)
    return jsonify({"id": webhook_id, "name": body.get("name") or webhook_id, "uri": body["uri"],
                    "subscribed_events": body["subscribed_events"], "state": "enabled", "new_signing_secret": secret})


# ---------------------------------------------------------------------------- scheduling


def schedule(st: SimState, op: Operation, name: str, body: dict[str, Any] | None) -> None:
    """At submit: plan the operation's event(s) from what the request asked for."""
    body = body or {}
    webhook = body.get("webhookConfig") or body.get("webhook_config")
    topic = (body.get("parameters") or {}).get("pubsubTopic")
    if op.dialect == "vertex" and not topic:
        return
    per_request = isinstance(webhook, dict) and bool(webhook.get("uris"))
    # The static webhook is our project's: a gateway (litellm-gemini) calls Google as itself, so
    # only what it passes through (a per-request webhook) can reach us.
    if op.dialect != "vertex" and not per_request and not (op.dialect == "gemini" and push_config(st)["static"]):
        return
    d = op.directives
    delay = d.float("event_delay", float(st.config.get("event_delay_s") or 0.0)) or 0.0
    drop = d.has("event_drop") or random.random() < float(st.config.get("event_drop_rate") or 0.0)
    app_state = st
    if d.has("event_forge"):  # signed as the real one, but sent while the generation runs
        forged = threading.Timer(0.05, _deliver, (app_state, op, name, webhook, topic, 1, False))
        forged.daemon = True
        forged.start()
    if drop or d.has("never_finish"):
        op.extra["push"] = "dropped"
        return
    copies = d.int("event_dup", 2 if d.has("event_dup") else 1) or 1
    wait = max(0.0, op.done_at - time.time()) + delay
    op.extra["push"] = "scheduled"
    timer = threading.Timer(wait, _deliver, (app_state, op, name, webhook, topic, copies, d.has("event_badsig")))
    timer.daemon = True
    timer.start()


def _deliver(st: SimState, op: Operation, name: str, webhook: Any, topic: str | None, copies: int, badsig: bool) -> None:
    if op.dialect == "vertex":
        if op.extra.get("storage_uri") and op.is_done():
            from .vertex import _upload_once  # Vertex writes the videos before it says the operation ended
            _upload_once(op)
        sub = push_config(st)["pubsub"].get(topic or "")
        if not sub:
            st.record(op.dialect, "push", op, 0, target=None, mode="pubsub", note=f"no push subscription for {topic}")
            return
        message_id = str(random.randrange(10**15, 10**16))
        for _ in range(copies):
            _pubsub(st, op, name, sub, message_id, badsig)
        return
    event_id = "msg_" + secrets.token_hex(12)
    uris = webhook.get("uris") if isinstance(webhook, dict) else None
    metadata = (webhook.get("userMetadata") or webhook.get("user_metadata")) if isinstance(webhook, dict) else None
    payload = {"type": "video.generated", "version": "v1", "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
               "data": {"name": name, "id": name, **({"user_metadata": metadata} if metadata else {})}}
    data = json.dumps(payload, separators=(",", ":"))
    for _ in range(copies):
        if uris:
            for uri in uris:
                _request_webhook(st, op, uri, event_id, data, badsig)
        else:
            _static_webhook(st, op, event_id, data, badsig)


def _post(st: SimState, op: Operation, url: str, data: str, headers: dict[str, str], mode: str) -> None:
    status = 0
    for attempt in range(ATTEMPTS):
        try:
            status = requests.post(url, data=data.encode(), headers={"Content-Type": "application/json", **headers},
                                   timeout=10).status_code
        except requests.RequestException:
            status = 0
        if 0 < status < 500:
            break
        time.sleep(0.5 * (attempt + 1))
    with st.lock:
        st.calls.append({"dialect": op.dialect, "kind": "push", "op_id": op.id, "prompt": op.prompt, "at": time.time(),
                         "status": status, "method": "POST", "path": None, "target": url, "mode": mode})


def _static_webhook(st: SimState, op: Operation, event_id: str, data: str, badsig: bool) -> None:
    static = push_config(st)["static"]
    if not static:
        return
    secret = static["secret"] if not badsig else "whsec_" + base64.b64encode(b"not the registered secret!!").decode()
    now = datetime.now(UTC)
    signature = standardwebhooks.Webhook(secret).sign(event_id, now, data)
    headers = {"webhook-id": event_id, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}
    _post(st, op, static["uri"], data, headers, "static")


def _request_webhook(st: SimState, op: Operation, uri: str, event_id: str, data: str, badsig: bool) -> None:
    now = int(time.time())
    claims = {"iss": GEMINI_ISSUER, "aud": uri, "iat": now, "exp": now + 300, "jti": event_id,
              "body_sha256": hashlib.sha256(data.encode()).hexdigest()}
    token = keys("forger" if badsig else "google").sign(claims)
    headers = {"webhook-id": event_id, "webhook-timestamp": str(now), "webhook-signature": token}
    _post(st, op, uri, data, headers, "request")


def _pubsub(st: SimState, op: Operation, name: str, sub: dict[str, str], message_id: str, badsig: bool) -> None:
    message = {"data": base64.b64encode(json.dumps({"name": name, "done": True}).encode()).decode(),
               "attributes": {"operationName": name}, "messageId": message_id,
               "publishTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    envelope = {"message": message, "subscription": sub.get("subscription") or "projects/sim/subscriptions/veo-vertex-done"}
    now = int(time.time())
    email = sub["service_account"]
    token = keys("forger" if badsig else "google").sign({
        "iss": GOOGLE_ISSUER, "aud": sub.get("audience") or sub["endpoint"], "email": email, "email_verified": True,
        "sub": str(int(hashlib.sha256(email.encode()).hexdigest()[:15], 16)), "iat": now, "exp": now + 3600})
    _post(st, op, sub["endpoint"], json.dumps(envelope), {"Authorization": f"Bearer {token}"}, "pubsub")
