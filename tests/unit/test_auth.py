"""API keys: only hashes are configured, a key proves one client, everything else is a 401."""
import json

import pytest

from veorelay.config import ConfigError, Settings
from veorelay.core.api_keys import AuthConfigError, hash_key, parse_api_keys
from veorelay.core.errors import ApiError
from veorelay.edges.auth import ANONYMOUS_CLIENT, authenticate

KEYS = {"acme": (hash_key("acme-key-1"), hash_key("acme-key-2")), "globex": (hash_key("globex-key"),)}


@pytest.mark.parametrize("header,client", [
    ("Bearer acme-key-1", "acme"),
    ("Bearer acme-key-2", "acme"),  # both keys of a client work while one is rotated out
    ("bearer globex-key", "globex"),  # the scheme is case-insensitive
    ("  Bearer   globex-key  ", "globex"),
])
def test_a_valid_key_names_its_client(header, client):
    assert authenticate(header, KEYS) == client


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic YWNtZTprZXk=", "acme-key-1", "Bearer acme-key-3",
                                    "Bearer " + hash_key("acme-key-1"), "Bearer " + "k" * 10_000])
def test_anything_else_is_401_and_never_quotes_the_key(header):
    with pytest.raises(ApiError) as caught:
        authenticate(header, KEYS)
    assert caught.value.status == 401 and caught.value.code == "unauthenticated"
    assert "acme-key" not in caught.value.message


def test_without_configured_keys_every_request_is_refused_unless_auth_is_explicitly_off():
    with pytest.raises(ApiError) as caught:
        authenticate("Bearer anything", {})
    assert caught.value.status == 401
    assert authenticate(None, {}, disabled=True) == ANONYMOUS_CLIENT


def test_the_configuration_holds_hashes_only():
    table = parse_api_keys(json.dumps({"acme": [hash_key("k1")], "globex": hash_key("k2")}))
    assert table == {"acme": (hash_key("k1"),), "globex": (hash_key("k2"),)}
    assert parse_api_keys(None) == parse_api_keys("") == parse_api_keys("UNSET") == {}


@pytest.mark.parametrize("raw", [
    "not json",
    "[]",
    json.dumps({"acme": ["plaintext-key"]}),  # a key instead of its hash
    json.dumps({"acme": [hash_key("k").upper()]}),
    json.dumps({"acme": []}),
    json.dumps({"bad id!": [hash_key("k")]}),
    json.dumps({"a": [hash_key("k")], "b": [hash_key("k")]}),  # one key, two clients
])
def test_malformed_key_tables_are_refused_without_quoting_them(raw):
    with pytest.raises(AuthConfigError) as caught:
        parse_api_keys(raw)
    assert "plaintext-key" not in str(caught.value)


def test_settings_read_the_keys_and_the_explicit_switch():
    base = {"GOOGLE_CLOUD_PROJECT": "p", "VEO_BUCKET": "b"}
    s = Settings.from_env(base | {"VEO_API_KEYS": json.dumps({"acme": [hash_key("k")]})})
    assert s.api_keys == {"acme": (hash_key("k"),)} and not s.auth_disabled
    assert hash_key("k") not in repr(s)
    assert Settings.from_env(base | {"VEO_AUTH_DISABLED": "true"}).auth_disabled
    assert Settings.from_env(base).api_keys == {}
    with pytest.raises(ConfigError, match="VEO_API_KEYS"):
        Settings.from_env(base | {"VEO_API_KEYS": "{"})
