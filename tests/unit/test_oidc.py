"""The OIDC token check of the internal functions (gcp/oidc.py), over keys made here: what is a
token for this function from the invoker, the audiences a function takes as its own, and how the
signing keys are fetched, cached and fetched again."""
from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt
from google.auth import jwt as google_jwt

from veorelay.gcp.oidc import (
    REFETCH_MIN_S,
    CertCache,
    CertsUnavailable,
    IdTokenVerifier,
    TokenRefused,
    bearer_token,
    is_own_audience,
)

pytestmark = pytest.mark.badinput

CERTS_URL = "https://certs.example/oauth2/v1/certs"
INVOKER = "veo-tasks@p.iam.gserviceaccount.com"
POLL_URL = "https://us-central1-my-proj.cloudfunctions.net/poll-job"
EVENTS_URL = "https://us-central1-my-proj.cloudfunctions.net/on-request-object"


class Key:
    """An RSA key with a key id; its public key as PEM stands for Google's certificate (google-auth takes either)."""

    def __init__(self, kid: str):
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        pem = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()
        self.signer = crypt.RSASigner.from_string(pem, key_id=kid)

    def token(self, aud: str = POLL_URL, kid: str | None = None, **claims) -> str:
        iat = int(time.time())
        payload = {"iss": "https://accounts.google.com", "aud": aud, "email": INVOKER, "email_verified": True,
                   "sub": "1", "iat": iat, "exp": iat + 3600, **claims}
        return google_jwt.encode(self.signer, payload, key_id=kid or self.kid).decode()


class CertsEndpoint:
    """A requests.Session stand-in for the certs URL: what it answers, and how often it was asked."""

    def __init__(self, *keys: Key, max_age: int | None = 300):
        self.keys = list(keys)
        self.max_age = max_age
        self.fetches = 0
        self.down = False

    def get(self, url, timeout=None):
        self.fetches += 1
        if self.down:
            import requests
            raise requests.ConnectionError("certs endpoint down")
        return _Response({k.kid: k.public_pem for k in self.keys},
                         {"Cache-Control": f"public, max-age={self.max_age}"} if self.max_age is not None else {})


class _Response:
    def __init__(self, body, headers):
        self._body, self.headers, self.status_code = body, headers, 200

    def raise_for_status(self):
        pass

    def json(self):
        return json.loads(json.dumps(self._body))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def key():
    return Key("k1")


@pytest.fixture
def endpoint(key):
    return CertsEndpoint(key)


@pytest.fixture(scope="module")
def forger():
    return Key("k1")  # the key id of the real key, another key behind it


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def verifier(endpoint, clock):
    return IdTokenVerifier(CertCache(endpoint, clock))  # type: ignore[arg-type]


def check(verifier, authorization, own=(POLL_URL,), email=INVOKER):
    return verifier.verify(authorization, own_urls=own, email=email, certs_url=CERTS_URL)


def status_of(verifier, authorization, **kwargs) -> int:
    with pytest.raises(TokenRefused) as refused:
        check(verifier, authorization, **kwargs)
    return refused.value.status


# ------------------------------------------------------------------------------ tokens


def test_the_invokers_token_for_this_function_is_accepted(verifier, key):
    caller = check(verifier, f"Bearer {key.token()}")
    assert caller.email == INVOKER and caller.audience == POLL_URL


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt",
                                           "Bearer a.b.c", "Bearer " + "x.y." + "z" * 9000, "Bearer W10.e30.c2ln"])  # a header that is no object
def test_no_token_or_not_a_jwt_is_401(verifier, authorization):
    assert status_of(verifier, authorization) == 401


def test_a_token_of_another_signer_is_403_even_under_a_known_key_id(verifier, forger):
    assert status_of(verifier, f"Bearer {forger.token()}") == 403
    assert status_of(verifier, f"Bearer {forger.token(kid='unknown')}") == 403


def test_an_unsigned_token_is_403(verifier):
    def b64(obj):
        import base64
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    iat = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": POLL_URL, "email": INVOKER, "email_verified": True,
              "iat": iat, "exp": iat + 3600}
    assert status_of(verifier, f"Bearer {b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.") == 403


@pytest.mark.parametrize("claims", [
    {"aud": "https://us-central1-my-proj.cloudfunctions.net/submit-job"},  # another function's
    {"aud": "https://evil.example/poll-job"},
    {"iss": "https://evil.example"},
    {"email": "someone@other.iam.gserviceaccount.com"},
    {"email_verified": False},
    {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600},  # expired
    {"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200},  # issued in the future
])
def test_a_token_not_for_this_function_from_the_invoker_is_403(verifier, key, claims):
    assert status_of(verifier, f"Bearer {key.token(**claims)}") == 403


def test_a_token_for_a_url_is_for_that_url_only(verifier, key):
    assert check(verifier, f"Bearer {key.token(aud=POLL_URL + '/')}")  # a trailing slash is the same URL
    assert status_of(verifier, f"Bearer {key.token(aud=POLL_URL + '-2')}") == 403


# ------------------------------------------------------------------------------ audiences


@pytest.mark.parametrize("aud", [
    EVENTS_URL,
    EVENTS_URL + "/",
    "https://on-request-object-123456789012.us-central1.run.app",  # Cloud Run's deterministic URL
    "https://on-request-object-abcdefghij-uc.a.run.app/?__GCP_CloudEventsMode=GCS_NOTIFICATION",  # as Eventarc pushes
])
def test_a_function_takes_each_of_its_urls_as_its_own(aud):
    assert is_own_audience(aud, EVENTS_URL)


@pytest.mark.parametrize("aud", [
    "https://poll-job-123456789012.us-central1.run.app",  # another function
    "https://on-request-object-123456789012.europe-west1.run.app",  # another region
    "https://on-request-object-2-abcdefghij-uc.a.run.app",  # another service whose name starts alike
    "https://on-request-object-abcdefghij-uc.a.run.app.evil.example",
    "http://on-request-object-abcdefghij-uc.a.run.app",
    "https://us-central1-my-proj.cloudfunctions.net/on-request-object/../poll-job",
    "https://us-central1-other-proj.cloudfunctions.net/on-request-object",
])
def test_no_other_url_is_a_functions_own(aud):
    assert not is_own_audience(aud, EVENTS_URL)


def test_a_local_url_is_matched_exactly():
    assert is_own_audience("http://127.0.0.1:8123/", "http://127.0.0.1:8123/")
    assert not is_own_audience("http://127.0.0.1:8124/", "http://127.0.0.1:8123/")


def test_bearer_token_takes_the_scheme_in_any_case():
    assert bearer_token("bearer a.b.c") == "a.b.c" and bearer_token("  Bearer   a.b.c ") == "a.b.c"


# ------------------------------------------------------------------------------ the keys


def test_keys_are_fetched_once_and_kept_as_long_as_the_answer_allows(verifier, key, endpoint, clock):
    for _ in range(5):
        check(verifier, f"Bearer {key.token()}")
    assert endpoint.fetches == 1
    clock.now += 301
    check(verifier, f"Bearer {key.token()}")
    assert endpoint.fetches == 2


def test_a_key_rotated_in_is_picked_up_at_once_and_unknown_ids_cost_one_fetch_per_interval(verifier, key, endpoint, clock):
    check(verifier, f"Bearer {key.token()}")
    clock.now += REFETCH_MIN_S + 1
    new = Key("k2")
    endpoint.keys.append(new)
    assert check(verifier, f"Bearer {new.token()}") and endpoint.fetches == 2
    forged = Key("forged")
    for i in range(20):  # a flood of forged key ids
        assert status_of(verifier, f"Bearer {forged.token(kid=f'forged-{i}')}") == 403
    assert endpoint.fetches == 2


def test_keys_that_cannot_be_fetched_are_unavailable_not_a_refusal_and_stale_ones_are_used(key, clock):
    endpoint = CertsEndpoint(key)
    endpoint.down = True
    verifier = IdTokenVerifier(CertCache(endpoint, clock))  # type: ignore[arg-type]
    with pytest.raises(CertsUnavailable):
        check(verifier, f"Bearer {key.token()}")
    endpoint.down = False
    check(verifier, f"Bearer {key.token()}")
    endpoint.down = True
    clock.now += 10_000
    assert check(verifier, f"Bearer {key.token()}")  # expired keys, but Google's endpoint is down: still checked with them


# The URL infra/ gives each internal function (VEO_<ENTRY>_URL): its deterministic run.app URL.
RUN_EVENTS_URL = "https://on-request-object-123456789012.us-central1.run.app"


@pytest.mark.parametrize("aud", [
    RUN_EVENTS_URL,
    RUN_EVENTS_URL + "/",
    "https://on-request-object-abcdefghij-uc.a.run.app/?__GCP_CloudEventsMode=GCS_NOTIFICATION",  # as Eventarc pushes
    "https://us-central1-my-proj.cloudfunctions.net/on-request-object",  # the same service's function URL
])
def test_a_function_known_by_its_run_app_url_takes_each_of_its_urls_as_its_own(aud):
    assert is_own_audience(aud, RUN_EVENTS_URL)


@pytest.mark.parametrize("aud", [
    "https://poll-job-123456789012.us-central1.run.app",  # another function
    "https://on-request-object-210987654321.us-central1.run.app",  # another project's service
    "https://on-request-object-123456789012.europe-west1.run.app",  # another region
    "https://on-request-object-2-abcdefghij-uc.a.run.app",  # another service whose name starts alike
    "https://on-request-object-2-123456789012.us-central1.run.app",
    "https://europe-west1-my-proj.cloudfunctions.net/on-request-object",
    "https://us-central1-my-proj.cloudfunctions.net/poll-job",
    "https://on-request-object-123456789012.us-central1.run.app.evil.example",
])
def test_no_other_url_is_the_own_of_a_function_known_by_its_run_app_url(aud):
    assert not is_own_audience(aud, RUN_EVENTS_URL)
