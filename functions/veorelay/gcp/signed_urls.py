"""V4 signed URLs for outputs, so a webhook receiver can download a video without credentials.

In the cloud the function's service account signs through IAM signBlob (it holds no key;
it needs roles/iam.serviceAccountTokenCreator on itself, and read access to the objects).
On the local stack no emulator checks signatures, so a throwaway RSA key made at runtime
signs, and the URL points at the emulator so it can really be fetched.
"""
from __future__ import annotations

import functools
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests

from veorelay.config import Settings
from veorelay.gcp import logs

if TYPE_CHECKING:
    from google.cloud import storage  # the bucket is handed in: the library is its caller's import

_LOCAL_SIGNER = "veo-relay-local@localhost.invalid"
SIGN_CALL_S = 10.0  # one token refresh or signBlob call
_lock = threading.Lock()


def with_signed_urls(view: dict[str, Any], bucket: storage.Bucket, settings: Settings) -> dict[str, Any]:
    """The job view with `signed_url` and `signed_url_expires_at` beside each output's `uri`,
    and the same inside its `poster`.

    A signing failure leaves the URL null (and logs an error) instead of holding the event
    back: the receiver still learns the job's outcome and the gs:// URI.
    """
    ttl = timedelta(seconds=settings.webhooks.signed_url_ttl_s)
    expires_at = (datetime.now(UTC) + ttl).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    outputs = []
    for output in view.get("outputs") or []:
        signed = {**output, **_signed(bucket, output.get("name"), ttl, settings, expires_at)}
        poster = output.get("poster")
        if isinstance(poster, dict):
            signed["poster"] = {**poster, **_signed(bucket, poster.get("name"), ttl, settings, expires_at)}
        outputs.append(signed)
    return {**view, "outputs": outputs}


def _signed(bucket: storage.Bucket, name: str | None, ttl: timedelta, settings: Settings, expires_at: str) -> dict[str, Any]:
    url = None
    if name:
        try:
            url = sign(bucket, name, ttl, settings)
        except Exception as exc:
            logs.error("signing an output URL failed", object=name, error=type(exc).__name__)
    return {"signed_url": url, "signed_url_expires_at": expires_at if url else None}


def sign(bucket: storage.Bucket, name: str, ttl: timedelta, settings: Settings) -> str:
    blob = bucket.blob(name)
    url: str
    if settings.storage_emulator_host:
        url = blob.generate_signed_url(
            version="v4", expiration=ttl, method="GET",
            credentials=_local_credentials(), api_access_endpoint=settings.storage_emulator_host,
        )
        return url
    credentials = _cloud_credentials()
    email = settings.webhooks.signing_service_account or credentials.service_account_email
    url = blob.generate_signed_url(version="v4", expiration=ttl, method="GET", credentials=_iam_signer(credentials, email))
    return url


class _BoundedSession(requests.Session):
    """Every call (token refresh, IAM signBlob) under SIGN_CALL_S: google-auth's default is 120 s."""

    def request(self, method, url, *args, **kwargs):
        kwargs["timeout"] = min(float(kwargs.get("timeout") or SIGN_CALL_S), SIGN_CALL_S)
        return super().request(method, url, *args, **kwargs)


def _auth_request():
    from google.auth.transport.requests import Request

    return Request(_BoundedSession())


def _iam_signer(credentials, email: str):
    """Credentials that sign through IAM signBlob as `email` (the function holds no key), each
    call with a deadline."""
    from google.auth import iam
    from google.oauth2 import service_account

    signer = iam.Signer(_auth_request(), credentials, email)
    return service_account.Credentials(signer, email, "https://oauth2.googleapis.com/token")


def _cloud_credentials():
    """The runtime's default credentials, refreshed when needed: the token authorises signBlob,
    and after a refresh Compute credentials know their service account's email."""
    with _lock:
        credentials = _default_credentials()
        if not credentials.valid:
            credentials.refresh(_auth_request())
        return credentials


@functools.cache
def _default_credentials():
    import google.auth

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return credentials


@functools.cache
def _local_credentials():
    """A service-account credential around a key generated now: good for signing, valid nowhere."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return service_account.Credentials.from_service_account_info({
        "type": "service_account", "client_email": _LOCAL_SIGNER, "private_key": pem,
        "private_key_id": "local", "token_uri": "https://oauth2.googleapis.com/token",
    })
