"""Google-signed OIDC ID tokens, as Cloud Tasks, Cloud Scheduler and Eventarc attach them to the
calls they make as the invoker identity: the signing keys (fetched from a certs URL, cached) and
one token checked for its signature, expiry, issuer, audience and service account.

The keys are Google's (GOOGLE_OIDC_CERTS_URL, `{key id: PEM certificate}`); the local stack's
Tasks emulator signs with a throwaway key and serves its certificate in the same format
(VEO_OIDC_CERTS_URL, dev only). An instance fetches them once and keeps them as long as the
answer's Cache-Control allows (Google: hours); a token signed by a key it does not know makes
it fetch again, at most every REFETCH_MIN_S, so a key rotation is picked up at once and a flood
of forged key ids costs nothing.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

# What Google writes in `iss` of the ID tokens it signs (google-auth accepts the same two).
ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
CLOCK_SKEW_S = 30  # tolerated difference between Google's clock and ours (iat, exp)
MAX_TOKEN_CHARS = 8192  # a Google ID token is about 1 KB; anything far longer is not one
DEFAULT_CERTS_TTL_S = 3600.0  # when the certs answer says nothing about caching
MIN_CERTS_TTL_S, MAX_CERTS_TTL_S = 60.0, 24 * 3600.0
REFETCH_MIN_S = 30.0  # an unknown key id fetches the certs again at most this often
FETCH_TIMEOUT_S = (3.05, 5.0)

_MAX_AGE = re.compile(r"max-age=(\d+)")
# A Cloud Functions (2nd gen) URL: https://<region>-<project>.cloudfunctions.net/<name>.
_FUNCTION_URL = re.compile(r"^https://(?P<region>[a-z]+-[a-z]+[0-9]+)-(?P<project>[a-z][a-z0-9-]*[a-z0-9])"
                           r"\.cloudfunctions\.net/(?P<name>[a-z0-9-]+)$")
# Its Cloud Run service's deterministic URL: https://<name>-<project number>.<region>.run.app
# (what infra/ gives every internal function: the run.app URL internal ingress admits).
_RUN_URL = re.compile(r"^https://(?P<name>[a-z][a-z0-9-]*[a-z0-9])-(?P<number>[0-9]{6,20})"
                      r"\.(?P<region>[a-z]+-[a-z]+[0-9]+)\.run\.app$")


class TokenRefused(Exception):
    """The call carries no token we accept: 401 (none, or not a token) or 403 (a token, but not
    one for this function from the invoker). `reason` is for the logs, never for the caller."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class CertsUnavailable(Exception):
    """The signing keys could not be fetched (and none are cached): not the caller's fault, so
    the call should be retried (503), not refused."""


@dataclass(frozen=True)
class Caller:
    email: str
    audience: str


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; TokenRefused(401) otherwise."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise TokenRefused(401, "no bearer token")
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise TokenRefused(401, "the bearer token is not a JWT")
    return token


def normalised_url(url: str) -> str:
    """A URL as an audience is compared: no query, no fragment, no trailing slash, host in lower case."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def is_own_audience(audience: str, own_url: str) -> bool:
    """Whether a token's `aud` names the function at `own_url` (VEO_<ENTRY>_URL).

    Cloud Tasks and Cloud Scheduler put exactly the URL they were created with (infra sets it:
    the function's deterministic run.app URL, https://<name>-<project number>.<region>.run.app,
    the only kind internal ingress admits them through). Eventarc delivers to the function's
    Cloud Run service under the URL Cloud Run reports for it, which may be the hash-based one
    (https://<name>-<hash>-<region code>.a.run.app) and which Terraform cannot hand the function
    without a cycle; so the other URLs of the same service are its own too: both run.app forms
    and the cloudfunctions.net one (https://<region>-<project>.cloudfunctions.net/<name>). The
    name and region are the service's (and a deterministic URL's project number), so a token
    for another function never matches."""
    aud, own = normalised_url(audience), normalised_url(own_url)
    if aud == own:
        return True
    fn, run = _FUNCTION_URL.match(own), _RUN_URL.match(own)
    found = fn or run
    if found is None:
        return False
    name, region = re.escape(found["name"]), re.escape(found["region"])
    number = re.escape(run["number"]) if run is not None else "[0-9]{6,20}"
    return bool(re.fullmatch(rf"https://{name}-{number}\.{region}\.run\.app", aud)
                or re.fullmatch(rf"https://{name}-[a-z0-9]{{6,16}}-[a-z]{{2,4}}\.a\.run\.app", aud)
                or (run is not None and re.fullmatch(rf"https://{region}-[a-z][a-z0-9-]*[a-z0-9]\.cloudfunctions\.net/{name}", aud)))


class CertCache:
    """The public keys behind certs URLs, per URL, shared by the threads of an instance. The
    answer is parsed by `_keys_of` ({key id: PEM} here; gcp/push_auth.py JwksCache reads a JWKS);
    kept `ttl_s`, or the answer's Cache-Control max-age, within limits."""

    _what = "the OIDC certificates"

    def __init__(self, session: requests.Session | None = None, clock: Callable[[], float] = time.monotonic,
                 ttl_s: float = DEFAULT_CERTS_TTL_S):
        self._session = session or requests.Session()
        self._clock = clock
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._certs: dict[str, tuple[Mapping[str, str], float, float]] = {}  # url -> (certs, expires, fetched)

    def get(self, url: str, *, unknown_key: str | None = None) -> Mapping[str, str]:
        """The keys of `url`, fetched if none are cached or they expired, or if `unknown_key` is
        not among them (and the last fetch is older than REFETCH_MIN_S)."""
        with self._lock:
            now = self._clock()
            cached = self._certs.get(url)
            if cached is not None:
                certs, expires, fetched = cached
                fresh = now < expires
                if fresh and (unknown_key is None or unknown_key in certs or now - fetched < REFETCH_MIN_S):
                    return certs
            try:
                certs, ttl = self._fetch(url)
            except CertsUnavailable:
                if cached is not None:
                    return cached[0]  # stale keys beat none while Google's endpoint hiccups
                raise
            self._certs[url] = (certs, now + ttl, now)
            return certs

    def _fetch(self, url: str) -> tuple[Mapping[str, str], float]:
        try:
            resp = self._session.get(url, timeout=FETCH_TIMEOUT_S)
            resp.raise_for_status()
            doc = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise CertsUnavailable(f"{self._what} could not be fetched: {type(exc).__name__}") from exc
        certs = self._keys_of(doc)
        match = _MAX_AGE.search(resp.headers.get("Cache-Control", ""))
        ttl = float(match.group(1)) if match else self._ttl_s
        return certs, min(max(ttl, MIN_CERTS_TTL_S), MAX_CERTS_TTL_S)

    def _keys_of(self, doc: Any) -> Mapping[str, str]:
        """{key id: PEM} from the answer; CertsUnavailable when it holds none."""
        if not isinstance(doc, dict) or not doc or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
            raise CertsUnavailable("the OIDC certificates answer is not {key id: PEM}")
        return doc


class IdTokenVerifier:
    """Checks the OIDC token of a call to an internal function."""

    def __init__(self, certs: CertCache | None = None):
        self.certs = certs or CertCache()

    def verify(self, authorization: str | None, *, own_urls: Iterable[str], email: str, certs_url: str) -> Caller:
        """The caller named by a valid token: signed by a key of `certs_url`, not expired, issued
        by Google, for one of `own_urls`, as the service account `email` (verified).
        TokenRefused(401/403) or CertsUnavailable otherwise."""
        token = bearer_token(authorization)
        try:
            header = jwt.decode_header(token)
            jwt.decode(token, verify=False)  # the segments are JSON objects
        except (auth_exceptions.GoogleAuthError, ValueError, TypeError) as exc:
            raise TokenRefused(401, f"the bearer token is not a JWT ({type(exc).__name__})") from None
        key_id = header.get("kid") if isinstance(header.get("kid"), str) else None
        claims = self._signed_claims(token, certs_url, key_id)
        issuer, audience = claims.get("iss"), claims.get("aud")
        if issuer not in ISSUERS:
            raise TokenRefused(403, "the token was not issued by Google")
        if not isinstance(audience, str) or not any(is_own_audience(audience, url) for url in own_urls):
            raise TokenRefused(403, "the token is for another audience")
        if claims.get("email") != email or claims.get("email_verified") is not True:
            raise TokenRefused(403, "the token is not the invoker's")
        return Caller(email=email, audience=audience)

    def _signed_claims(self, token: str, certs_url: str, key_id: str | None) -> Mapping[str, Any]:
        certs = self.certs.get(certs_url)
        if key_id and key_id not in certs:
            certs = self.certs.get(certs_url, unknown_key=key_id)  # a key rotated in since we fetched
        try:
            claims: Mapping[str, Any] = jwt.decode(token, certs=certs, verify=True, clock_skew_in_seconds=CLOCK_SKEW_S)
        except (auth_exceptions.GoogleAuthError, ValueError, TypeError) as exc:
            # An unknown key, a bad signature, alg none/HS256, expired, issued in the future.
            raise TokenRefused(403, f"the token does not verify: {_first_words(exc)}") from None
        return claims


def _first_words(exc: Exception) -> str:
    """The start of a verification error, never the token it may quote."""
    text = str(exc).split(":")[0].split(",")[0]
    return text[:80] or type(exc).__name__
