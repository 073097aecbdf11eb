"""Who sent a provider completion event: the three signatures the provider_events function
accepts (docs/PROVIDERS.md "Completion events (push)"), each checked before anything is read.

* Gemini API static (project-level) webhooks: Standard Webhooks, HMAC-SHA256 over
  `webhook-id.webhook-timestamp.body` with the `whsec_` secret the WebhookService returned
  (every current secret tried, for a rotation); a timestamp more than 5 minutes off is refused
  (the library's tolerance), so an old delivery cannot be replayed.
* Gemini API per-request webhooks (`webhookConfig` in the generation request): an RS256 JWT in
  the `webhook-signature` header, signed by a key of Google's JWKS (fetched, cached with a TTL,
  fetched again at most every REFETCH_MIN_S for a key id it does not know), not expired, for
  the exact URL veo-relay registered for that job (`aud`).
* Vertex AI through Pub/Sub push: the subscription's OIDC token (gcp/oidc.py), for the
  function's URL, naming the push service account.

A refusal is `PushRefused` (the edge answers 401 and writes nothing); keys that cannot be
fetched are `oidc.CertsUnavailable` (503: the sender tries again).
"""
from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import requests
import standardwebhooks
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from veorelay.gcp.oidc import CLOCK_SKEW_S, CertCache, CertsUnavailable
from veorelay.gcp.oidc import REFETCH_MIN_S as REFETCH_MIN_S  # the JWKS cache's, as documented above

MAX_JWT_CHARS = 8192


class PushRefused(Exception):
    """The event's signature is missing, wrong, expired or for someone else. `reason` is for the
    logs only."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def header(headers: Mapping[str, str], name: str) -> str:
    return str(headers.get(name) or headers.get(name.title()) or "").strip()


def verify_static(body: bytes, headers: Mapping[str, str], secrets: Iterable[str]) -> None:
    """A Standard Webhooks signature by one of `secrets` over this body (and a fresh timestamp)."""
    wanted = {k: header(headers, k) for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    if not all(wanted.values()):
        raise PushRefused("no Standard Webhooks headers")
    secrets = tuple(secrets)
    if not secrets:
        raise PushRefused("no static webhook secret is configured (VEO_GEMINI_WEBHOOK_SECRET)")
    reason = "no secret"
    for secret in secrets:
        try:
            standardwebhooks.Webhook(secret).verify(body, wanted, json_parse=False)
            return
        except standardwebhooks.WebhookVerificationError as exc:
            reason = str(exc)[:80]
        except ValueError:  # a malformed signature entry, or a body that is not UTF-8
            reason = "malformed signature or body"
    raise PushRefused(f"static webhook signature refused: {reason}")


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and "," not in value and " " not in value


class JwksCache(CertCache):
    """The RSA public keys of a JWKS URL (`{"keys": [{"kid", "kty": "RSA", "n", "e"}...]}`), per
    URL, as {kid: PEM}; cached as gcp/oidc.py CertCache caches certificates (jwks_ttl_s, or the
    answer's Cache-Control max-age, within limits)."""

    _what = "the webhook JWKS"

    def __init__(self, session: requests.Session | None = None, clock: Callable[[], float] = time.monotonic,
                 ttl_s: float = 3600.0):
        super().__init__(session, clock, ttl_s)

    def _keys_of(self, doc: Any) -> Mapping[str, str]:
        keys = {}
        for jwk in (doc.get("keys") if isinstance(doc, dict) else None) or []:
            if isinstance(jwk, dict) and jwk.get("kty") == "RSA" and isinstance(jwk.get("kid"), str):
                try:
                    keys[jwk["kid"]] = rsa_pem(jwk["n"], jwk["e"])
                except (KeyError, TypeError, ValueError):
                    continue
        if not keys:
            raise CertsUnavailable("the webhook JWKS holds no RSA key")
        return keys


def _b64int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def rsa_pem(n: str, e: str) -> str:
    """A JWK's RSA modulus and exponent as a PEM public key (what google-auth verifies with)."""
    public = rsa.RSAPublicNumbers(_b64int(e), _b64int(n)).public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def verify_request_jwt(token: str, *, audiences: Iterable[str], jwks: JwksCache, jwks_url: str) -> Mapping[str, Any]:
    """The claims of a per-request webhook's JWT: RS256 by a JWKS key, unexpired, for one of `audiences`."""
    if not token or len(token) > MAX_JWT_CHARS or not looks_like_jwt(token):
        raise PushRefused("no JWT in webhook-signature")
    try:
        head = jwt.decode_header(token)
    except (auth_exceptions.GoogleAuthError, ValueError, TypeError):
        raise PushRefused("the JWT header does not decode") from None
    if head.get("alg") != "RS256":
        raise PushRefused("the JWT is not RS256")
    kid = head.get("kid") if isinstance(head.get("kid"), str) else None
    keys = jwks.get(jwks_url)
    if not kid or kid not in keys:
        keys = jwks.get(jwks_url, unknown_key=kid or "")
    if not kid or kid not in keys:
        raise PushRefused("the JWT's key is not in the JWKS")
    try:
        claims: Mapping[str, Any] = jwt.decode(token, certs={kid: keys[kid]}, verify=True, clock_skew_in_seconds=CLOCK_SKEW_S)
    except (auth_exceptions.GoogleAuthError, ValueError, TypeError) as exc:
        raise PushRefused(f"the JWT does not verify: {str(exc).split(':')[0][:60]}") from None
    if "exp" not in claims:
        raise PushRefused("the JWT has no expiry")
    aud = claims.get("aud")
    given = aud if isinstance(aud, list) else [aud]
    if not any(isinstance(a, str) and a in set(audiences) for a in given):
        raise PushRefused("the JWT is for another URL")
    return claims


def body_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
