"""Who is calling the public API: `Authorization: Bearer <api key>`, checked against the
sha256 hashes in VEO_API_KEYS (mounted from Secret Manager). The plaintext keys live only
with the clients; what we hold cannot be replayed.

A client id scopes everything it touches: its jobs, its Idempotency-Keys, its webhook secret.
Without VEO_API_KEYS every request is refused, unless VEO_AUTH_DISABLED says so explicitly
(local experiments only), so a deployment that forgot its keys is closed, not open.
"""
from __future__ import annotations

import hmac
from collections.abc import Mapping

from veorelay.core.api_keys import hash_key
from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.job import JOB_ID, Job
from veorelay.gcp import logs
from veorelay.runtime import Runtime

# The client id every request gets when auth is explicitly disabled.
ANONYMOUS_CLIENT = "default"

MAX_KEY_CHARS = 512  # a longer Authorization header is not one of our keys: no hashing megabytes


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




def owned_job(rt: Runtime, job_id: str, client_id: str) -> Job | None:
    """The client's own job; None for a malformed id, a missing job, another client's job and a
    deleted one (steps/delete.py): a caller answers all four exactly alike, so nothing tells one
    client what another has."""
    job = rt.store.get(job_id) if JOB_ID.match(job_id) else None
    if job is None or job.get("client_id") != client_id or job.get("deleted_at") is not None:
        return None
    logs.set_job(job_id)
    return job
