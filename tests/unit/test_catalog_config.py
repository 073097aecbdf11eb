"""VEO_CATALOG_FILE: a deployment overrides or extends the shipped catalog without a code
change; what it says reaches the providers' capability checks; a bad file stops the functions
at start, naming the variable, the file and the key."""
from __future__ import annotations

import pytest
import requests

from veorelay.config import ConfigError, Settings, shipped_catalog
from veorelay.core.capabilities import check_request
from veorelay.core.errors import ApiError
from veorelay.core.request import parse_request
from veorelay.providers import build_providers

BASE = {"GOOGLE_CLOUD_PROJECT": "p", "VEO_BUCKET": "veo-bucket"}

OVERRIDE = """
[vertex]
default_model = "veo-3.1-fast-generate-001"

[[vertex.models]]
id = "veo-4-generate-preview"
status = "preview"
tier = "standard"
durations = [4, 8, 12]
resolutions = { "720p" = [4, 8, 12], "1080p" = [8, 12] }
aspect_ratios = ["16:9"]
audio = "optional"
first_frame = true
last_frame = false
max_samples = 2
price_per_second = { "720p" = 0.5 }

[[vertex.models]]
id = "veo-3.1-lite-generate-001"
status = "retired"
retired_on = 2026-11-30
replacement = "veo-3.1-fast-generate-001"
tier = "lite"
durations = [4, 6, 8]
resolutions = { "720p" = [4, 6, 8] }
aspect_ratios = ["16:9", "9:16"]
audio = "optional"
first_frame = true
last_frame = true
max_samples = 4
"""


def settings_with(tmp_path, text: str) -> Settings:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return Settings.from_env({**BASE, "VEO_CATALOG_FILE": str(path)})


def vertex_caps(settings: Settings):
    return build_providers(settings, requests.Session())["vertex"].capabilities


def test_without_the_variable_the_shipped_catalog_is_used():
    settings = Settings.from_env(BASE)
    assert settings.catalog is shipped_catalog()
    assert vertex_caps(settings).default_model == "veo-3.1-generate-001"


def test_an_override_adds_a_model_retires_one_and_changes_the_default(tmp_path):
    caps = vertex_caps(settings_with(tmp_path, OVERRIDE))
    assert caps.default_model == "veo-3.1-fast-generate-001"
    assert check_request(caps, parse_request({"prompt": "p"})) == "veo-3.1-fast-generate-001"
    # the added model, with its own rules
    job = parse_request({"prompt": "p", "model": "veo-4-generate-preview", "duration_seconds": 12, "resolution": "1080p"})
    assert check_request(caps, job) == "veo-4-generate-preview"
    with pytest.raises(ApiError) as caught:
        check_request(caps, parse_request({"prompt": "p", "model": "veo-4-generate-preview", "aspect_ratio": "9:16"}))
    assert caught.value.field == "aspect_ratio"
    # the model it retired is refused with its replacement; the rest of vertex's models are untouched
    with pytest.raises(ApiError) as caught:
        check_request(caps, parse_request({"prompt": "p", "model": "veo-3.1-lite-generate-001"}))
    assert (caught.value.field, caught.value.message) == (
        "model", "model 'veo-3.1-lite-generate-001' was retired on 2026-11-30; use 'veo-3.1-fast-generate-001' instead")
    assert caps.model_spec("veo-3.1-generate-001") == shipped_catalog().provider("vertex").get("veo-3.1-generate-001")
    # other providers keep the shipped catalog
    assert build_providers(settings_with(tmp_path, OVERRIDE), requests.Session())["gemini"].capabilities.default_model == \
        "veo-3.1-generate-preview"


@pytest.mark.parametrize("text,words", [
    ("[vertex]\ndefault_model = \"veo-3.0-generate-001\"\n", "default_model: names 'veo-3.0-generate-001', which is retired"),
    ("[vertex]\ncolour = \"red\"\n", "vertex.colour: unknown key"),
    ("[sora]\n", "sora: unknown provider"),
    ("[vertex\n", "is not valid TOML"),
    (OVERRIDE.replace('price_per_second = { "720p" = 0.5 }', 'price_per_second = { "720p" = -0.5 }'),
     "vertex.models[0] (veo-4-generate-preview).price_per_second.720p: must not be negative"),
    (OVERRIDE.replace('replacement = "veo-3.1-fast-generate-001"', 'replacement = "veo-9"'),
     "vertex.models[1] (veo-3.1-lite-generate-001).replacement: names 'veo-9', which this provider does not have"),
])
def test_a_bad_file_fails_at_start_naming_the_variable_the_file_and_the_key(tmp_path, text, words):
    with pytest.raises(ConfigError) as caught:
        settings_with(tmp_path, text)
    message = str(caught.value)
    assert message.startswith("VEO_CATALOG_FILE: ") and str(tmp_path / "catalog.toml") in message and words in message


def test_a_file_that_is_not_there_fails_at_start(tmp_path):
    with pytest.raises(ConfigError, match=r"^VEO_CATALOG_FILE: .*missing\.toml: cannot be read"):
        Settings.from_env({**BASE, "VEO_CATALOG_FILE": str(tmp_path / "missing.toml")})
