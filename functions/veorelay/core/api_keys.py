"""The API keys a deployment accepts: VEO_API_KEYS holds only their sha256 hashes. Pure."""
from __future__ import annotations

import hashlib
import json
import re

_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class AuthConfigError(ValueError):
    """VEO_API_KEYS is malformed. The message never quotes a value."""


def is_client_id(value: str) -> bool:
    """1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    return bool(_CLIENT_ID.match(value))


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
        if not isinstance(client, str) or not is_client_id(client):
            raise AuthConfigError("VEO_API_KEYS: client ids are 1-64 letters, digits, '.', '_' or '-'")
        hashes = [hashes] if isinstance(hashes, str) else hashes
        if not isinstance(hashes, list) or not hashes or not all(isinstance(h, str) and _SHA256_HEX.match(h) for h in hashes):
            raise AuthConfigError(f"VEO_API_KEYS[{client!r}] must be a non-empty list of lowercase sha256 hex digests")
        if seen & set(hashes):
            raise AuthConfigError(f"VEO_API_KEYS[{client!r}] reuses a key hash of another client")
        seen |= set(hashes)
        keys[client] = tuple(hashes)
    return keys
