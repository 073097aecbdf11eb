"""core/storable.py: Firestore's value model at its exact limits (each tried against the
emulator, see the module's docstring), and the request schema using it (core/request.py)."""
from __future__ import annotations

import pytest

from veorelay.core.errors import ApiError
from veorelay.core.request import parse_request
from veorelay.core.storable import (
    MAX_DEPTH,
    MAX_FIELD_PATH_BYTES,
    NotStorable,
    check_field_value,
    check_unicode,
    render_path,
)

pytestmark = pytest.mark.badinput


def nested(levels: int, leaf=1):
    for _ in range(levels):
        leaf = {"a": leaf}
    return leaf


def problem(value, field: str = "metadata") -> NotStorable:
    with pytest.raises(NotStorable) as caught:
        check_field_value(field, value)
    return caught.value


@pytest.mark.parametrize("value", [
    nested(MAX_DEPTH), nested(MAX_DEPTH - 1, {}), {"a": [{"b": [nested(MAX_DEPTH - 5, [])]}]},
    {"n": 2**63 - 1, "m": -(2**63), "f": 1.7976931348623157e308, "z": -0.0, "s": "\x00\u200d🎬", "b": False, "none": None},
    {"k" * (MAX_FIELD_PATH_BYTES - len("metadata.")): 1},
    {"k" * 745: {"j" * 745: 1}},  # 8 + 1 + 745 + 1 + 745 = 1500
    {"k" * 745: [{"j" * 745: 1}]},  # array positions are not in the path
    {"é" * 745: 1},  # 9 + 1490 bytes
    {"___": 1, "__": 2, "_x_": 3, "a.b": 4, "`": 5, " ": 6, "\x00": 7},
    [1, "a", {"b": [2]}],
], ids=["20-maps", "20-maps-last-empty", "20-mixed", "scalars", "path-1500", "path-1500-two-keys", "path-skips-positions",
        "path-1500-utf8", "odd-keys", "top-level-array"])
def test_what_firestore_stores_passes(value):
    check_field_value("metadata", value)


@pytest.mark.parametrize("value,path,words", [
    (nested(MAX_DEPTH + 1), ("a",) * MAX_DEPTH, "deeper than 20"),
    (nested(MAX_DEPTH, {}), ("a",) * MAX_DEPTH, "deeper than 20"),
    (nested(MAX_DEPTH, []), ("a",) * MAX_DEPTH, "deeper than 20"),  # the emulator would take this one: we do not
    ({"a": [[1]]}, ("a", 0), "array directly inside an array"),
    ([[]], (0,), "array directly inside an array"),
    ({"n": 2**63}, ("n",), "64-bit"),
    ({"n": [-(2**63) - 1]}, ("n", 0), "64-bit"),
    ({"x": float("inf")}, ("x",), "not finite"),
    ({"x": float("-inf")}, ("x",), "not finite"),
    ({"x": float("nan")}, ("x",), "not finite"),
    ({"": 1}, ("",), "empty key"),
    ({"__x__": 1}, ("__x__",), "reserved"),
    ({"____": 1}, ("____",), "reserved"),  # `__.*__` as documented, although the emulator takes this one
    ({"__a\nb__": 1}, ("__a\nb__",), "reserved"),
    ({"k" * 1492: 1}, ("k" * 1492,), "field path over 1500"),
    ({"k" * 745: {"j" * 746: 1}}, ("k" * 745, "j" * 746), "field path over 1500"),
    ({"é" * 751: 1}, ("é" * 751,), "over 1500 bytes"),
    ({"a": "\ud800"}, ("a",), "lone surrogate"),
    ({"\udfff": 1}, ("\udfff",), "lone surrogate"),
    ({1: 1}, (1,), "not a string"),
    ({"a": b"bytes"}, ("a",), "not a JSON value"),
    ({"a": (1, 2)}, ("a",), "not a JSON value"),
])
def test_what_firestore_cannot_store_is_named(value, path, words):
    err = problem(value)
    assert err.path == path and words in err.reason, (err.path, err.reason)


def test_check_unicode_finds_a_lone_surrogate_anywhere_and_names_it():
    with pytest.raises(NotStorable) as caught:
        check_unicode({"ok": ["fine", {"deeper": ["x", "bad \udc00"]}]})
    assert caught.value.path == ("ok", 1, "deeper", 1)
    with pytest.raises(NotStorable) as caught:
        check_unicode({"a": {"k\ud800": 1}})
    assert caught.value.path == ("a", "k\ud800")
    check_unicode(nested(5000, "deep but fine"))  # iterative: deeper than the recursion limit


def test_a_path_is_shown_safely():
    assert render_path(("metadata", "tags", 0, "x")) == "metadata.tags.0.x"
    assert render_path(("metadata", "k\ud800")) == "metadata.k\\ud800"
    assert render_path(("k" * 200,)) == "k" * 80 + "…"
    render_path(("\udfff" * 3,)).encode("utf-8")


@pytest.mark.parametrize("body,field,words", [
    ({"prompt": "p", "metadata": nested(MAX_DEPTH + 1)}, "metadata." + ".".join("a" * MAX_DEPTH), "deeper than 20"),
    ({"prompt": "p", "metadata": {"a": [[1]]}}, "metadata.a.0", "array directly inside an array"),
    ({"prompt": "p", "metadata": {"a": {"__x__": 1}}}, "metadata.a.__x__", "reserved"),
    ({"prompt": "p", "metadata": {"x": float("inf")}}, "metadata.x", "not finite"),
    ({"prompt": "p\ud800"}, "prompt", "lone surrogate"),
    ({"prompt": "p", "image": {"gcs_uri": "gs://b/\udfff"}}, "image.gcs_uri", "lone surrogate"),
    ({"prompt": "p", "x\ud800": 1}, "x\\ud800", "lone surrogate"),
    ({"prompt": "a\x1b[31m lake"}, "prompt", "control character U+001B"),
    ({"prompt": "a lake\r\n"}, "prompt", "control character U+000D"),
    ({"prompt": "a\x85lake"}, "prompt", "control character U+0085"),
    ({"prompt": "\u200b\u200c\u200d\u2060\ufeff"}, "prompt", "blank"),
    ({"prompt": " \n\t\u00a0\u3000\u2028"}, "prompt", "blank"),
    ({"prompt": "\u202e\u2066\u00ad\u180e"}, "prompt", "blank"),
    ({"prompt": "\u3164\u2800\ufe0f\U000e0100"}, "prompt", "blank"),
    ({"prompt": "p", "negative_prompt": "\x00"}, "negative_prompt", "control character U+0000"),
    ({"prompt": "p", "negative_prompt": "\u200b"}, "negative_prompt", "blank"),
])
def test_the_request_schema_refuses_naming_the_field(body, field, words):
    with pytest.raises(ApiError) as caught:
        parse_request(body)
    err = caught.value
    assert (err.status, err.code, err.field) == (400, "invalid_request", field), err.body()
    assert words in err.message and "Value error" not in err.message, err.message


@pytest.mark.parametrize("prompt", [
    "a calm lake\nat dawn\twith mist", "a family 👨\u200d👩\u200d👧 at the beach", "\u200bx", "雪の中の狐", "\ufffd",
])
def test_prompts_with_visible_text_pass(prompt):
    assert parse_request({"prompt": prompt, "negative_prompt": prompt}).prompt == prompt
