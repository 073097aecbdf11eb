"""Who is calling the public API: `Authorization: Bearer <api key>`, checked against the
sha256 hashes in VEO_API_KEYS (mounted from Secret Manager). The plaintext keys live only
with the clients; what we hold cannot be replayed.

A client id scopes everything it touches: its jobs, its Idempotency-Keys, its webhook secret.
Without VEO_API_KEYS every request is refused, unless VEO_AUTH_DISABLED says so explicitly
(local experiments only), so a deployment that forgot its keys is closed, not open.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Mapping

from veorelay.core.errors import ApiError, ErrorCode

# The client id every request gets when auth is explicitly disabled.
ANONYMOUS_CLIENT = "default"

_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_KEY_CHARS = 512  # a longer Authorization header is not one of our keys: no hashing megabytes


class AuthConfigError(ValueError):
    """VEO_API_KEYS is malformed. The message never quotes a value."""


def hash_key(key: str) -> str:
    """What VEO_API_KEYS stores for a key: `printf %s "$KEY" | sha256sum`."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_api_keys(raw: str | None) -> dict[str, tuple[str, ...]]:
    """VEO_API_KEYS = {"client id": ["<sha256 hex>", ...]} (several hashes: key rotation)."""
    if not raw or raw.strip() in ("", "UNSET"):  # UNSET: the Secret Manager placeholder
        return {}
    try:
        table = json.loads(raw)
    except ValueError:
        raise AuthConfigError("VEO_API_KEYS is not valid JSON") from None
    if not isinstance(table, dict):
        raise AuthConfigError('VEO_API_KEYS must be a JSON object {"client id": ["<sha256 hex of the key>", ...]}')
    keys: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    for client, hashes in table.items():
        if not isinstance(client, str) or not _CLIENT_ID.match(client):
            raise AuthConfigError("VEO_API_KEYS: client ids are 1-64 letters, digits, '.', '_' or '-'")
        hashes = [hashes] if isinstance(hashes, str) else hashes
        if not isinstance(hashes, list) or not hashes or not all(isinstance(h, str) and _SHA256_HEX.match(h) for h in hashes):
            raise AuthConfigError(f"VEO_API_KEYS[{client!r}] must be a non-empty list of lowercase sha256 hex digests")
        if seen & set(hashes):
            raise AuthConfigError(f"VEO_API_KEYS[{client!r}] reuses a key hash of another client")
        seen |= set(hashes)
        keys[client] = tuple(hashes)
    return keys


def authenticate(authorization: str | None, api_keys: Mapping[str, tuple[str, ...]], disabled: bool = False) -> str:
    """The client id the Authorization header proves; ApiError 401 otherwise."""
    if disabled:
        return ANONYMOUS_CLIENT
    if not api_keys:
        raise _unauthenticated("this deployment has no API keys configured")
    scheme, _, key = (authorization or "").strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise _unauthenticated("send your API key as `Authorization: Bearer <key>`")
    if len(key) > MAX_KEY_CHARS:
        raise _unauthenticated("invalid API key")
    presented = hash_key(key)
    found = None
    # Compare with every hash (no early exit), each in constant time.
    for client, hashes in api_keys.items():
        for stored in hashes:
            if hmac.compare_digest(presented, stored):
                found = client
    if found is None:
        raise _unauthenticated("invalid API key")
    return found


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, ErrorCode.UNAUTHENTICATED, message, "Authorization")
