"""Bad input, by class, on every way a job arrives (tests/steps/entries.py: a JSON body, the
`request` part of a multipart body, a request object in the bucket), over the fakes: each case
gets its status, error code and field, and leaves nothing behind (no job, no task, no object);
the same input is refused the same way on all three. What passes is stored and reads back
equal (FakeStore encodes through Firestore's own encoder)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from veorelay.core.storable import MAX_DEPTH
from veorelay.core.views import job_view
from veorelay.edges.body import MAX_JSON_BYTES, MAX_JSON_DEPTH

from .entries import ENTRIES, created, entry_runtime, post_multipart, same, send, the_job

pytestmark = pytest.mark.badinput

SOURCES = {"json": "the body", "multipart": "the `request` part", "object": "the request object"}
# Where a problem with the JSON text itself (not at one key) is reported: the part that carried it.
CARRIER = {"json": None, "multipart": "request", "object": None}


def job(**fields: Any) -> dict[str, Any]:
    return {"prompt": "a calm lake at dawn", "provider": "fake", **fields}


def dumps(body: Any) -> bytes:
    return json.dumps(body).encode()  # ensure_ascii: a lone surrogate goes as the escape \udXXX


def nested(levels: int, leaf: Any = 1, key: str = "a") -> Any:
    """`levels` maps, one inside the other."""
    for _ in range(levels):
        leaf = {key: leaf}
    return leaf


def refused(entry: str, body: bytes) -> dict[str, Any]:
    """The error of a refused job, after checking it left nothing behind."""
    rt = entry_runtime()
    status, answer = send(rt, entry, body)
    assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message", "field"}, answer
    assert answer["error"]["message"]
    assert created(rt, entry) == ([], [], []), f"a refused job left something behind: {created(rt, entry)}"
    return {"status": status, **answer["error"]}


def accepted(entry: str, body: bytes) -> dict[str, Any]:
    """The stored job of an accepted one; its view is strict JSON."""
    rt = entry_runtime()
    status, answer = send(rt, entry, body)
    assert status == 202, answer
    stored = the_job(rt)
    assert answer == json.loads(json.dumps(job_view(stored)))
    json.dumps(job_view(stored), allow_nan=False, ensure_ascii=False).encode("utf-8")
    return stored


# ---------------------------------------------------------------- what passes can be stored

# (id, body, field): refused with 400 invalid_request naming the field, on every entry.
NOT_STORABLE = [
    # metadata is level 1; the 21st map is the one at metadata.a....a (20 keys)
    ("metadata-21-maps-deep", dumps(job(metadata=nested(MAX_DEPTH + 1))), "metadata." + ".".join(["a"] * MAX_DEPTH)),
    ("metadata-21-levels-ending-in-an-empty-map", dumps(job(metadata=nested(MAX_DEPTH, {}))), "metadata." + ".".join(["a"] * MAX_DEPTH)),
    ("metadata-lists-and-maps-21-deep", dumps(job(metadata={"a": [{"b": [nested(MAX_DEPTH - 3)]}]})), None),
    ("array-in-array", dumps(job(metadata={"grid": [[1, 2], [3, 4]]})), "metadata.grid.0"),
    ("array-in-array-deeper", dumps(job(metadata={"a": [{"b": [1, [2]]}]})), "metadata.a.0.b.1"),
    ("int-2-to-63", dumps(job(metadata={"n": 2**63})), "metadata.n"),
    ("int-below-minus-2-to-63", dumps(job(metadata={"n": -(2**63) - 1})), "metadata.n"),
    ("int-400-digits", b'{"prompt": "p", "provider": "fake", "metadata": {"n": ' + b"9" * 400 + b"}}", "metadata.n"),
    ("float-overflows-to-infinity", b'{"prompt": "p", "provider": "fake", "metadata": {"x": 1e999}}', "metadata.x"),
    ("float-overflows-to-minus-infinity", b'{"prompt": "p", "provider": "fake", "metadata": {"x": [-1e400]}}', "metadata.x.0"),
    ("key-empty", dumps(job(metadata={"": 1})), "metadata."),
    ("key-reserved", dumps(job(metadata={"__name__": 1})), "metadata.__name__"),
    ("key-reserved-nested", dumps(job(metadata={"a": {"__x__": True}})), "metadata.a.__x__"),
    ("key-reserved-four-underscores", dumps(job(metadata={"____": 1})), "metadata.____"),
    ("key-path-1501-bytes", dumps(job(metadata={"k" * 745: {"j" * 746: 1}})), None),
    ("key-1600-bytes", dumps(job(metadata={"é" * 800: 1})), None),
    ("surrogate-in-metadata-value", dumps(job(metadata={"a": "x\ud800y"})), "metadata.a"),
    ("surrogate-in-metadata-key", dumps(job(metadata={"b": {"k\udfff": 1}})), "metadata.b.k\\udfff"),
    ("surrogate-in-prompt", dumps(job(prompt="a lake \udc00")), "prompt"),
    ("surrogate-in-negative-prompt", dumps(job(negative_prompt="\ud83d")), "negative_prompt"),
    ("surrogate-in-unknown-field-name", dumps(job(**{"x\ud800": 1})), "x\\ud800"),
    ("surrogate-in-image-url", dumps(job(image={"url": "https://example.com/\ud800.png"})), "image.url"),
    ("metadata-not-an-object", dumps(job(metadata=[1])), "metadata"),
]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("body,field", [c[1:] for c in NOT_STORABLE], ids=[c[0] for c in NOT_STORABLE])
def test_what_firestore_cannot_store_is_refused_naming_the_field(entry, body, field):
    error = refused(entry, body)
    assert (error["status"], error["code"]) == (400, "invalid_request"), error
    if field is None:  # a long path: its start is enough
        assert error["field"].startswith("metadata."), error
    else:
        assert error["field"] == field, error
    error["field"].encode("utf-8")  # a key that is not valid Unicode is shown escaped, never echoed as it came


# At Firestore's limits exactly (tried against the emulator): accepted, stored, read back equal.
AT_THE_LIMITS = [
    ("metadata-20-maps-deep", {"metadata": nested(MAX_DEPTH)}),
    ("metadata-20-levels-of-lists-and-maps", {"metadata": {"a": [{"b": [nested(MAX_DEPTH - 5, [])]}]}}),
    ("arrays-of-maps-of-arrays", {"metadata": {"a": [{"b": [1, {"c": [True, None]}]}]}}),
    ("int64-bounds", {"metadata": {"max": 2**63 - 1, "min": -(2**63)}, "seed": 2**32 - 1}),
    ("floats", {"metadata": {"tiny": 5e-324, "big": 1.7976931348623157e308, "minus-zero": -0.0, "pi": 3.14159}}),
    ("field-path-1500-bytes", {"metadata": {"k" * 745: {"j" * 745: 1}}}),
    ("odd-keys", {"metadata": {"a.b": 1, "`": 2, "___": 3, "_x_": 4, " ": 5, "\u0000": 6, "émoji 🎬": 7}}),
    ("unicode-text", {"prompt": "a fox 🦊 in snow, 雪の中の狐\nslow motion\tgolden hour", "metadata": {"t": "\u200d\u2028\ufffd"}}),
    ("prompt-with-joiners-inside", {"prompt": "a family 👨\u200d👩\u200d👧 at the beach", "negative_prompt": "blur\u200b"}),
]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("fields", [c[1] for c in AT_THE_LIMITS], ids=[c[0] for c in AT_THE_LIMITS])
def test_what_passes_is_stored_and_reads_back_equal(entry, fields):
    body = job(**fields)
    stored = accepted(entry, dumps(body))
    assert same(stored["metadata"], body.get("metadata"))
    expected_request = {k: v for k, v in body.items() if k not in ("provider", "metadata")}
    assert same(stored["request"], expected_request)


# ---------------------------------------------------------------- one strict parser for all three

# (id, body, the problem's words, field: "carrier" for the part that carried the JSON)
NOT_STRICT_JSON = [
    ("duplicate-key", b'{"prompt": "a lake", "provider": "fake", "prompt": "a lake [sim:op_error]"}', "appears twice", "prompt"),
    ("duplicate-key-nested", b'{"prompt": "p", "provider": "fake", "metadata": {"a": {"b": 1, "b": 2}}}', "appears twice", "metadata.a.b"),
    ("duplicate-key-in-an-array", b'{"prompt": "p", "metadata": {"l": [1, {"x": 1, "x": 1}]}}', "appears twice", "metadata.l.1.x"),
    ("duplicate-key-same-value", b'{"prompt": "p", "prompt": "p"}', "appears twice", "prompt"),
    ("nan", b'{"prompt": "p", "provider": "fake", "seed": NaN}', "NaN is not JSON", "carrier"),
    ("infinity", b'{"prompt": "p", "provider": "fake", "metadata": {"x": Infinity}}', "Infinity is not JSON", "carrier"),
    ("minus-infinity", b'{"prompt": "p", "metadata": {"x": [-Infinity]}}', "-Infinity is not JSON", "carrier"),
    ("not-utf8", b'{"prompt": "\xff\xfe"}', "not UTF-8", "carrier"),
    ("overlong-utf8", b'{"prompt": "\xc0\xaf"}', "not UTF-8", "carrier"),
    ("utf8-encoded-surrogate", b'{"prompt": "\xed\xa0\x80"}', "not UTF-8", "carrier"),
    ("latin1", '{"prompt": "café"}'.encode("latin-1"), "not UTF-8", "carrier"),
    ("utf16", '{"prompt": "p"}'.encode("utf-16"), "not UTF-8", "carrier"),
    ("bom", b"\xef\xbb\xbf" + b'{"prompt": "p"}', "BOM", "carrier"),
    ("nested-100k-deep", b'{"prompt": "p", "metadata": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", "nested deeper than", "carrier"),
    ("nested-one-past-the-parser-limit", dumps(job(metadata=nested(MAX_JSON_DEPTH))), "nested deeper than", "carrier"),
    ("broken", b"{not json", "Expecting property name", "carrier"),
    ("trailing-garbage", b'{"prompt": "p"} x', "Extra data", "carrier"),
    ("two-documents", b'{"prompt": "p"}{"prompt": "q"}', "Extra data", "carrier"),
    ("empty", b"", "Expecting value", "carrier"),
    ("array", b'[{"prompt": "p"}]', "a JSON array, not an object", "carrier"),
    ("string", b'"a calm lake"', "a JSON string, not an object", "carrier"),
    ("null", b"null", "a JSON null, not an object", "carrier"),
    ("number", b"42", "a JSON number, not an object", "carrier"),
]


@pytest.mark.parametrize("body,words,field", [c[1:] for c in NOT_STRICT_JSON], ids=[c[0] for c in NOT_STRICT_JSON])
def test_json_that_is_not_strict_is_refused_the_same_way_on_every_entry(body, words, field):
    problems = set()
    for entry in ENTRIES:
        error = refused(entry, body)
        expected_field = CARRIER[entry] if field == "carrier" else field
        assert (error["status"], error["code"], error["field"]) == (400, "invalid_request", expected_field), (entry, error)
        source, _, problem = error["message"].partition(" is not one strict JSON object: ")
        assert source == SOURCES[entry] and words in problem, (entry, error)
        problems.add(problem)
    assert len(problems) == 1, problems  # the one parser's words, whichever way the job came


def test_the_parser_leaves_metadata_depth_to_the_schema_which_names_the_field():
    """Between Firestore's 20 levels and the parser's limit the schema refuses, naming the field."""
    assert MAX_JSON_DEPTH > MAX_DEPTH + 1
    for entry in ENTRIES:
        error = refused(entry, dumps(job(metadata=nested(MAX_JSON_DEPTH - 2))))
        assert error["field"].startswith("metadata.a.a.") and "deeper than 20" in error["message"], error


def padded(size: int) -> bytes:
    """A valid job of exactly `size` bytes (whitespace is JSON too)."""
    start = dumps(job())[:-1]
    return start + b" " * (size - len(start) - 1) + b"}"


@pytest.mark.parametrize("entry", ENTRIES)
def test_the_size_limit_is_the_same_on_every_entry(entry):
    """1 MiB of JSON, however it comes (a multipart text part too, not werkzeug's 500 kB)."""
    accepted(entry, padded(MAX_JSON_BYTES))
    error = refused(entry, padded(MAX_JSON_BYTES + 1))
    assert (error["status"], error["code"]) == (413, "payload_too_large"), error


REPEATED_REQUEST_PART = [
    ("two-text-parts", [("request", dumps(job()), None), ("request", dumps(job(prompt="another")), None)]),
    ("same-text-twice", [("request", dumps(job()), None), ("request", dumps(job()), None)]),
    ("text-and-file-part", [("request", dumps(job()), None), ("request", dumps(job()), "request.json")]),
    ("two-file-parts", [("request", dumps(job()), "a.json"), ("request", dumps(job()), "b.json")]),
]


@pytest.mark.parametrize("parts", [c[1] for c in REPEATED_REQUEST_PART], ids=[c[0] for c in REPEATED_REQUEST_PART])
def test_a_repeated_request_part_is_refused(parts):
    rt = entry_runtime()
    status, answer = post_multipart(rt, parts)
    assert (status, answer["error"]["code"], answer["error"]["field"]) == (400, "invalid_request", "request"), answer
    assert "given 2 times" in answer["error"]["message"]
    assert created(rt, "multipart") == ([], [], [])


@pytest.mark.parametrize("filename", [None, "request.json"], ids=["text-part", "file-part"])
def test_the_request_part_is_read_as_its_bytes(filename):
    """A text or a file part: the same bytes, the same strict parser (werkzeug alone would have
    decoded a text part with errors="replace", turning invalid UTF-8 into U+FFFD)."""
    rt = entry_runtime()
    status, answer = post_multipart(rt, [("request", b'{"prompt": "caf\xe9", "provider": "fake"}', filename)])
    assert (status, answer["error"]["field"]) == (400, "request") and "not UTF-8" in answer["error"]["message"]
    prompt = "café 🎬 \ufffd"  # a real U+FFFD is fine
    rt = entry_runtime()
    status, answer = post_multipart(rt, [("request", json.dumps(job(prompt=prompt), ensure_ascii=False).encode(), filename)])
    assert status == 202 and answer["request"]["prompt"] == prompt, answer


def test_a_multipart_job_without_a_request_part_is_refused():
    rt = entry_runtime()
    status, answer = post_multipart(rt, [("image", b"\x89PNG\r\n\x1a\n", "a.png")])
    assert (status, answer["error"]["code"], answer["error"]["field"]) == (400, "invalid_request", "request")
    assert created(rt, "multipart") == ([], [], [])


# ---------------------------------------------------------------- prompts

# (id, field value) refused for `prompt` and for `negative_prompt`
CONTROL_CHARACTERS = [
    ("nul", "a lake\x00"), ("escape", "\x1b[31ma red lake"), ("carriage-return", "a lake\r\nat dawn"),
    ("bell", "\x07"), ("delete", "lake\x7f"), ("c1-next-line", "a\x85lake"), ("c1-csi", "\x9b31m lake"),
    ("vertical-tab", "a\x0blake"), ("form-feed", "a\x0clake"), ("unit-separator", "a\x1flake"),
]
BLANK = [
    ("spaces", "   "), ("newlines-and-tabs", "\n\t\n"), ("zero-width-space", "\u200b"),
    ("zero-width-joiners", "\u200c\u200d"), ("word-joiner", "\u2060"), ("bom", "\ufeff"),
    ("mixed-invisible", " \u200b\n\u2060\t\ufeff\u200d "), ("bidi-override", "\u202e\u202d"),
    ("soft-hyphen", "\u00ad"), ("hangul-filler", "\u3164"), ("braille-blank", "\u2800"),
    ("variation-selector", "\ufe0f"), ("no-break-and-ideographic-space", "\u00a0\u3000"),
    ("line-separator", "\u2028"), ("tag-characters", "\U000e0041\U000e007f"), ("mongolian-vowel-separator", "\u180e"),
]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("name", ["prompt", "negative_prompt"])
@pytest.mark.parametrize("text", [c[1] for c in CONTROL_CHARACTERS], ids=[c[0] for c in CONTROL_CHARACTERS])
def test_control_characters_in_a_prompt_are_refused(entry, name, text):
    error = refused(entry, dumps(job(**{name: text})))
    assert (error["status"], error["code"], error["field"]) == (400, "invalid_request", name), error
    assert "control character U+" in error["message"] and "newline and tab" in error["message"]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("name", ["prompt", "negative_prompt"])
@pytest.mark.parametrize("text", [c[1] for c in BLANK], ids=[c[0] for c in BLANK])
def test_a_prompt_with_nothing_visible_is_refused(entry, name, text):
    error = refused(entry, dumps(job(**{name: text})))
    assert (error["status"], error["code"], error["field"]) == (400, "invalid_request", name), error
    assert "blank" in error["message"]
