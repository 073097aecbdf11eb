"""The signatures provider completion events carry (gcp/push_auth.py), over keys and secrets made
here: Standard Webhooks HMAC for the Gemini API's static webhooks, RS256 JWTs against a cached
JWKS for its per-request webhooks, and the OIDC token of a Pub/Sub push (gcp/oidc.py); and what
a verified event names (core/push_events.py)."""
from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import flask
import pytest
import requests
import standardwebhooks
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt
from google.auth import jwt as google_jwt

from veorelay.core.push_events import gemini_event, pubsub_event
from veorelay.edges.provider_events import scheme_of
from veorelay.gcp.oidc import CertCache, IdTokenVerifier, TokenRefused
from veorelay.gcp.push_auth import REFETCH_MIN_S, JwksCache, PushRefused, verify_request_jwt, verify_static

pytestmark = pytest.mark.badinput

SECRET = "whsec_" + base64.b64encode(b"static-webhook-secret-for-tests!").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"the secret before the rotation!!").decode()
JWKS_URL = "https://jwks.example/.well-known/jwks.json"
EVENTS_URL = "https://us-central1-p.cloudfunctions.net/provider-events"
JOB = "0123456789abcdef0123456789abcdef"
JOB_URL = f"{EVENTS_URL}?job={JOB}"
BODY = json.dumps({"type": "video.generated", "data": {"name": "models/veo-3/operations/abc"}}).encode()


def signed(body: bytes = BODY, secret: str = SECRET, at: datetime | None = None, msg_id: str = "msg_1") -> dict[str, str]:
    at = at or datetime.now(UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": standardwebhooks.Webhook(secret).sign(msg_id, at, body.decode())}


# ---------------------------------------------------------------------------- static (HMAC)


def test_a_static_webhook_signed_with_a_current_secret_verifies():
    verify_static(BODY, signed(), [SECRET])
    verify_static(BODY, signed(secret=OLD_SECRET), [SECRET, OLD_SECRET])  # while Google rotates


# Built when the test runs, not at collection: "too old" and "from the future" are relative to now.
@pytest.mark.parametrize("make", [
    lambda: (signed(secret=OLD_SECRET), BODY),  # forged: another secret
    lambda: (signed(), BODY.replace(b"abc", b"xyz")),  # the body changed after signing
    lambda: (signed(at=datetime.now(UTC) - timedelta(minutes=10)), BODY),  # replayed: too old
    lambda: (signed(at=datetime.now(UTC) + timedelta(minutes=10)), BODY),  # from the future
    lambda: ({"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time()))}, BODY),  # unsigned
    lambda: ({**signed(), "webhook-signature": "v1"}, BODY),  # malformed
], ids=["forged", "body-changed", "too-old", "future", "unsigned", "malformed"])
def test_a_static_webhook_not_signed_by_us_now_is_refused(make):
    headers, body = make()
    with pytest.raises(PushRefused):
        verify_static(body, headers, [SECRET])


def test_no_configured_secret_refuses_every_static_webhook():
    with pytest.raises(PushRefused):
        verify_static(BODY, signed(), [])


# ---------------------------------------------------------------------------- per-request (JWT)


class Key:
    def __init__(self, kid: str):
        self.kid = kid
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = private.public_key().public_numbers()
        b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()  # noqa: E731
        self.jwk = {"kty": "RSA", "kid": kid, "alg": "RS256", "n": b64(numbers.n), "e": b64(numbers.e)}
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        self.signer = crypt.RSASigner.from_string(pem, key_id=kid)
        self.public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def jwt(self, aud: str = JOB_URL, lifetime_s: int = 300, **claims) -> str:
        iat = int(time.time())
        return google_jwt.encode(self.signer, {"aud": aud, "iat": iat, "exp": iat + lifetime_s, **claims}).decode()


class Endpoint:
    """A requests.Session stand-in serving documents, counting fetches."""

    def __init__(self, doc, max_age: int | None = None):
        self.doc, self.max_age, self.fetches, self.down = doc, max_age, 0, False

    def get(self, url, timeout=None):
        self.fetches += 1
        if self.down:
            raise requests.ConnectionError("down")
        return _Response(self.doc() if callable(self.doc) else self.doc,
                         {"Cache-Control": f"max-age={self.max_age}"} if self.max_age else {})


class _Response:
    def __init__(self, doc, headers):
        self._doc, self.headers = doc, headers

    def raise_for_status(self):
        pass

    def json(self):
        return self._doc


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


GOOGLE = Key("google-1")


def jwks(*keys: Key) -> JwksCache:
    return JwksCache(session=Endpoint({"keys": [k.jwk for k in keys]}))


def test_a_request_webhook_jwt_for_its_url_verifies():
    claims = verify_request_jwt(GOOGLE.jwt(), audiences=[JOB_URL, EVENTS_URL], jwks=jwks(GOOGLE), jwks_url=JWKS_URL)
    assert claims["aud"] == JOB_URL


@pytest.mark.parametrize("token", [
    Key("google-1").jwt(),  # forged: Google's key id, another key
    Key("nobody").jwt(),  # a key the JWKS does not hold
    GOOGLE.jwt(aud=f"{EVENTS_URL}?job={'f' * 32}"),  # another job's URL: no replay across jobs
    GOOGLE.jwt(aud="https://elsewhere.example/hook"),  # wrong audience
    GOOGLE.jwt(lifetime_s=-120),  # expired
    GOOGLE.jwt()[:-4] + "AAAA",  # signature tampered
    "v1,c2lnbmF0dXJl",  # an HMAC signature where a JWT belongs
])
def test_a_request_webhook_jwt_that_is_not_googles_for_this_job_is_refused(token):
    with pytest.raises(PushRefused):
        verify_request_jwt(token, audiences=[JOB_URL, EVENTS_URL], jwks=jwks(GOOGLE), jwks_url=JWKS_URL)


def test_an_hs256_jwt_is_refused_even_keyed_with_the_public_key():
    import hashlib
    import hmac
    head = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "google-1", "typ": "JWT"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps({"aud": JOB_URL, "exp": int(time.time()) + 60}).encode()).rstrip(b"=")
    sig = base64.urlsafe_b64encode(hmac.new(GOOGLE.public_pem.encode(), head + b"." + body, hashlib.sha256).digest()).rstrip(b"=")
    with pytest.raises(PushRefused):
        verify_request_jwt((head + b"." + body + b"." + sig).decode(), audiences=[JOB_URL], jwks=jwks(GOOGLE), jwks_url=JWKS_URL)


def test_the_jwks_is_cached_for_its_ttl_and_a_new_key_id_is_fetched_rate_limited():
    clock = Clock()
    served = [GOOGLE]
    endpoint = Endpoint(lambda: {"keys": [k.jwk for k in served]})
    cache = JwksCache(session=endpoint, clock=clock, ttl_s=600)
    for _ in range(3):
        verify_request_jwt(GOOGLE.jwt(), audiences=[JOB_URL], jwks=cache, jwks_url=JWKS_URL)
    assert endpoint.fetches == 1

    rotated = Key("google-2")
    served.append(rotated)
    clock.now += REFETCH_MIN_S + 1
    verify_request_jwt(rotated.jwt(), audiences=[JOB_URL], jwks=cache, jwks_url=JWKS_URL)  # a new key: fetched at once
    assert endpoint.fetches == 2
    for _ in range(5):  # a flood of unknown key ids costs nothing more
        with pytest.raises(PushRefused):
            verify_request_jwt(Key(f"forged-{_}").jwt(), audiences=[JOB_URL], jwks=cache, jwks_url=JWKS_URL)
    assert endpoint.fetches == 2

    clock.now += 601  # the TTL is up
    verify_request_jwt(GOOGLE.jwt(), audiences=[JOB_URL], jwks=cache, jwks_url=JWKS_URL)
    assert endpoint.fetches == 3
    endpoint.down = True  # stale keys beat none while the endpoint hiccups
    clock.now += 601
    verify_request_jwt(GOOGLE.jwt(), audiences=[JOB_URL], jwks=cache, jwks_url=JWKS_URL)


# ---------------------------------------------------------------------------- Pub/Sub push (OIDC)

PUSHER = "veo-pubsub-push@p.iam.gserviceaccount.com"


def oidc(aud: str = EVENTS_URL, email: str = PUSHER, lifetime_s: int = 3600, key: Key = GOOGLE) -> str:
    iat = int(time.time())
    return google_jwt.encode(key.signer, {"iss": "https://accounts.google.com", "aud": aud, "email": email,
                                          "email_verified": True, "iat": iat, "exp": iat + lifetime_s}).decode()


def verifier() -> IdTokenVerifier:
    return IdTokenVerifier(CertCache(session=Endpoint({GOOGLE.kid: GOOGLE.public_pem})))


def test_a_pubsub_push_token_for_this_function_from_the_pusher_verifies():
    caller = verifier().verify(f"Bearer {oidc()}", own_urls=(EVENTS_URL,), email=PUSHER, certs_url="https://certs.example")
    assert caller.email == PUSHER


@pytest.mark.parametrize("token", [
    oidc(aud="https://us-central1-p.cloudfunctions.net/api"),  # wrong audience
    oidc(email="someone@p.iam.gserviceaccount.com"),  # not the push subscription's account
    oidc(lifetime_s=-300),  # expired
    oidc(key=Key("google-1")),  # forged
])
def test_a_pubsub_push_token_that_is_not_the_subscriptions_is_refused(token):
    with pytest.raises(TokenRefused):
        verifier().verify(f"Bearer {token}", own_urls=(EVENTS_URL,), email=PUSHER, certs_url="https://certs.example")


# ---------------------------------------------------------------------------- what an event names


def test_a_gemini_event_names_its_operation_and_a_request_webhook_its_job():
    static = gemini_event(json.loads(BODY), "gemini-static", "msg_1")
    assert (static.completion, static.operation, static.job_id) == (True, "models/veo-3/operations/abc", None)
    doc = {"type": "video.generated", "data": {"id": "models/veo-3/operations/abc", "user_metadata": {"job_id": JOB}}}
    assert gemini_event(doc, "gemini-request", "msg_2").job_id == JOB
    assert gemini_event(doc, "gemini-static", "msg_2").job_id is None  # only a per-request webhook echoes our metadata
    assert gemini_event({"type": "batch.succeeded", "data": {}}, "gemini-static", "m").completion is False
    assert gemini_event("not an object", "gemini-static", "m").operation is None


def test_a_pubsub_message_names_the_operation_it_carries():
    name = "projects/p/locations/us-central1/publishers/google/models/veo-3/operations/123"
    data = base64.b64encode(json.dumps({"name": name, "done": True}).encode()).decode()
    event = pubsub_event({"message": {"data": data, "messageId": "42"}, "subscription": "projects/p/subscriptions/s"})
    assert (event.operation, event.completion, event.event_id) == (name, True, "42")
    running = base64.b64encode(json.dumps({"name": name, "done": False}).encode()).decode()
    assert pubsub_event({"message": {"data": running}}).completion is False
    assert pubsub_event({"message": {"data": "!!not base64"}}).operation is None


@pytest.mark.parametrize(("headers", "scheme"), [
    ({"Authorization": "Bearer a.b.c"}, "pubsub"),
    ({"webhook-signature": "eyJh.eyJz.c2ln"}, "gemini-request"),
    ({"webhook-signature": "v1,c2ln v1,b3Ro"}, "gemini-static"),
    ({}, "gemini-static"),
])
def test_a_refused_event_is_counted_under_the_scheme_it_claims(headers, scheme):
    """edges/provider_events.py scheme_of: the label of the provider_events_refused metric."""
    with flask.Flask("events").test_request_context("/", method="POST", headers=headers):
        assert scheme_of(flask.request) == scheme
