"""The job request's limits, apart from its schema (core/request.py, pydantic): what the edges
and the capability checks read without importing pydantic, so that a function that never
validates a request never pays for the schema's library at its cold start."""
from __future__ import annotations

MAX_PROMPT_CHARS = 4000
MAX_METADATA_BYTES = 2048
MAX_DEADLINE_SECONDS = 24 * 3600
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_REFERENCE_IMAGES = 3
IMAGE_SOURCES = ("base64", "gcs_uri", "url", "upload")
