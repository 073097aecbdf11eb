import pytest

from veorelay.core.errors import ApiError
from veorelay.core.request import parse_request


def refusal(body):
    with pytest.raises(ApiError) as caught:
        parse_request(body)
    return caught.value


def test_minimal_request_is_a_prompt():
    req = parse_request({"prompt": "a hummingbird in slow motion"})
    assert req.prompt == "a hummingbird in slow motion"
    assert req.options() == set()


def test_options_lists_only_what_the_client_set():
    req = parse_request({"prompt": "p", "aspect_ratio": "9:16", "seed": 7, "webhook_url": "https://example.com/h", "metadata": {"a": 1}})
    assert req.options() == {"aspect_ratio", "seed"}


@pytest.mark.parametrize("body,field,words", [
    ({}, "prompt", "required"),
    ({"prompt": ""}, "prompt", "at least 1"),
    ({"prompt": "   "}, "prompt", "blank"),
    ({"prompt": 5}, "prompt", "string"),
    ({"prompt": "p", "duration_seconds": "8"}, "duration_seconds", "integer"),
    ({"prompt": "p", "duration_seconds": 8.5}, "duration_seconds", "integer"),
    ({"prompt": "p", "sample_count": 0}, "sample_count", "greater than or equal"),
    ({"prompt": "p", "sample_count": 5}, "sample_count", "less than or equal"),
    ({"prompt": "p", "aspect_ratio": "4:3"}, "aspect_ratio", "16:9"),
    ({"prompt": "p", "resolution": "8k"}, "resolution", "720p"),
    ({"prompt": "p", "seed": -1}, "seed", "greater than or equal"),
    ({"prompt": "p", "generate_audio": "yes"}, "generate_audio", "boolean"),
    ({"prompt": "p", "colour": "red"}, "colour", "unknown field"),
    ({"prompt": "p", "webhook_url": "ftp://x"}, "webhook_url", "https"),
    ({"prompt": "p", "metadata": {"k": "x" * 3000}}, "metadata", "2048"),
    ({"prompt": "p", "metadata": []}, "metadata", "dictionary"),
    ({"prompt": "p" * 4001}, "prompt", "at most 4000"),
    ({"prompt": "p", "model": "../etc/passwd"}, "model", "pattern"),
])
def test_bad_fields_are_named_in_a_400(body, field, words):
    err = refusal(body)
    assert err.status == 400
    assert err.code == "invalid_request"
    assert err.field == field
    assert words in err.message
    assert err.body() == {"error": {"code": "invalid_request", "message": err.message, "field": field}}


@pytest.mark.parametrize("body", [None, [], "prompt", 3])
def test_body_must_be_an_object(body):
    err = refusal(body)
    assert (err.status, err.code, err.field) == (400, "invalid_request", None)
