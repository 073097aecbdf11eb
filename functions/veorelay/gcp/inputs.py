"""Reads back the input images a job was accepted with (gs://BUCKET/inputs/<job id>/)."""
from __future__ import annotations

from google.api_core import exceptions as gexc
from google.cloud import storage

from veorelay.core.errors import ErrorCode, PermanentError, TransientError
from veorelay.core.images import INPUTS_PREFIX, split_gcs_uri
from veorelay.gcp.deadlines import GCS_CALL_S, GCS_RETRY


class BucketInputs:
    """Reads back the images ingest_images stored (the submit step; InputImages in base.py)."""

    def __init__(self, bucket: storage.Bucket):
        self._bucket = bucket

    def read(self, gcs_uri: str) -> bytes:
        name_of_bucket, name = split_gcs_uri(gcs_uri)
        if name_of_bucket != self._bucket.name or not name.startswith(INPUTS_PREFIX + "/"):
            raise PermanentError(ErrorCode.INVALID_REQUEST, "the job's image is not one veo-relay stored")
        try:
            data: bytes = self._bucket.blob(name).download_as_bytes(timeout=GCS_CALL_S, retry=GCS_RETRY)
            return data
        except gexc.NotFound:
            raise PermanentError(ErrorCode.INVALID_REQUEST, "the job's input image is gone from the bucket") from None
        except gexc.GoogleAPIError as exc:
            raise TransientError(ErrorCode.INTERNAL, f"reading an input image failed: {type(exc).__name__}") from exc
