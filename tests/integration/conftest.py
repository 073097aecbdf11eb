"""Fixtures every integration module uses: the API client and the bucket, over the shared stack."""
import pytest

from .helpers import Client, gcs_bucket


@pytest.fixture(scope="module")
def client(stack):
    return Client(stack)


@pytest.fixture(scope="module")
def bucket(stack):
    return gcs_bucket(stack)
