"""Property: whatever a client sends, by whichever way (a JSON body, the `request` part of a
multipart body, a request object), the answer is either a 4xx with {error: {code, message,
field}} and nothing created (no job, no task, no object), or a 2xx whose job reads back from the
store (FakeStore encodes through Firestore's own encoder) equal to what was accepted, with the
same JSON types, and whose view is strict JSON (no NaN, valid UTF-8). Never a 5xx.

Bodies are generated valid and hostile: nested metadata, integers past 64 bits, floats with
NaN and infinities, lone surrogates, odd and reserved keys, arrays of arrays, deep nesting,
unknown fields, wrong types, control and invisible characters in prompts; and as JSON text
with duplicate keys, NaN literals, numbers overflowing to infinity, invalid UTF-8."""
from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from veorelay.core.storable import MAX_DEPTH
from veorelay.core.views import job_view

from .entries import ENTRIES, created, entry_runtime, same, send, the_job

pytestmark = pytest.mark.badinput

HOSTILE_EXAMPLES = 300
VALID_EXAMPLES = 100
ROUTING = ("provider", "metadata", "webhook_url", "webhook_events", "deadline_seconds")

# --- what Firestore can keep (the valid side)
safe_keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=10).filter(
    lambda k: not (k.startswith("__") and k.endswith("__") and len(k) >= 4))
safe_leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
                        st.text(st.characters(codec="utf-8"), max_size=20))
safe_values = st.recursive(safe_leaves, lambda inner: st.lists(st.one_of(safe_leaves, st.dictionaries(safe_keys, inner, max_size=3)), max_size=3)
                           | st.dictionaries(safe_keys, inner, max_size=3), max_leaves=10)
safe_metadata = st.dictionaries(safe_keys, safe_values, max_size=4)
safe_prompt = st.builds(str.__add__, st.sampled_from("aZ7é雪🦊"), st.text(st.characters(codec="utf-8", exclude_categories=("Cc",)), max_size=60))
SAFE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "metadata": safe_metadata, "negative_prompt": safe_prompt, "model": st.sampled_from(["veo-fake-1", "veo-fake-2"]),
    "seed": st.integers(0, 2**32 - 1), "sample_count": st.integers(1, 4), "aspect_ratio": st.sampled_from(["16:9", "9:16"]),
    "deadline_seconds": st.integers(10, 86400), "webhook_url": st.just("https://93.184.215.14/hooks/veo"),
}
valid_bodies = st.fixed_dictionaries({"prompt": safe_prompt, "provider": st.just("fake")}, optional=SAFE_FIELDS).filter(
    lambda b: len(json.dumps(b.get("metadata", {}), separators=(",", ":"))) <= 2048)

# --- and what a hostile client tries
any_text = st.text(st.characters(exclude_categories=()), max_size=12)  # surrogates and controls included
keys = st.one_of(
    safe_keys, any_text,
    st.sampled_from(["", "__x__", "____", "___", "__", "a.b", "`", "\x00", "k" * 1495, "é" * 760, "__proto__", "$ref"]),
)
numbers = st.one_of(
    st.integers(), st.integers(-(2**63) - 2, -(2**63) + 1), st.integers(2**63 - 2, 2**63 + 1),
    st.floats(), st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308]),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, any_text)


def deep(levels: int, leaf: Any, as_list: bool) -> Any:
    for i in range(levels):
        leaf = [leaf] if as_list and i % 2 else {"k": leaf}
    return leaf


deep_values = st.builds(deep, st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3), st.one_of(leaves, st.just({}), st.just([])), st.booleans())
json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3), max_leaves=12)
metadata = st.one_of(
    safe_metadata,
    st.dictionaries(keys, st.one_of(safe_values, json_values, deep_values), max_size=4),
    json_values,
)
# prompts: fine, or with control or invisible characters only, or anything
prompt_text = st.one_of(
    safe_prompt,
    st.text(st.sampled_from(" \t\n\r\x00\x1b\x7f\x85\u200b\u200c\u200d\u2060\ufeff\u202e\u3164\u00ad\ud800a"), min_size=0, max_size=6),
    any_text,
)
# the schema's fields, right and wrong, and fields it does not have
HOSTILE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "provider": st.one_of(st.sampled_from(["fakestream", "nope", ""]), leaves),
    "model": st.one_of(st.sampled_from(["veo-9", "../x", ""]), leaves),
    "negative_prompt": st.one_of(prompt_text, leaves),
    "aspect_ratio": st.one_of(st.sampled_from(["4:3", ""]), leaves),
    "duration_seconds": st.one_of(st.integers(0, 70), leaves),
    "sample_count": st.one_of(st.integers(0, 5), leaves),
    "seed": st.one_of(st.integers(-1, 2**33), numbers),
    "generate_audio": st.one_of(st.booleans(), leaves),
    "metadata": metadata,
    "deadline_seconds": st.one_of(st.integers(0, 90_000), leaves),
    "webhook_events": st.one_of(st.lists(st.sampled_from(["job.succeeded", "job.failed", "job.nope"]), max_size=3), json_values),
    "webhook_url": st.sampled_from(["ftp://example.com/", "https://10.0.0.1/", "javascript:x"]),
    "image": st.one_of(leaves, st.dictionaries(st.sampled_from(["base64", "url", "mime_type", "path"]), leaves, max_size=2)),
    "reference_images": st.one_of(leaves, st.lists(leaves, max_size=2)),
    "colour": json_values, "Prompt": any_text, "\ud800": leaves, "__x__": leaves,
}


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid body with a few of its fields, or of fields it should not have, made hostile."""
    body = draw(valid_bodies)
    for name in draw(st.lists(st.sampled_from(["prompt", *HOSTILE_FIELDS]), max_size=3, unique=True)):
        if name == "prompt":
            body["prompt"] = draw(st.one_of(prompt_text, leaves))
        else:
            body[name] = draw(HOSTILE_FIELDS[name])
    return body


# --- the JSON text, as a client might send it
def encode(body: dict[str, Any], how: str) -> bytes:
    text = json.dumps(body)  # ensure_ascii (a lone surrogate goes as a \udXXX escape), NaN as NaN
    if how == "plain":
        return text.encode()
    if how == "unescaped":  # the characters themselves; a lone surrogate cannot be encoded
        return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if how == "duplicate-prompt":
        return ('{"prompt": "first", ' + text[1:]).encode()
    if how == "overflow":
        return (text[:-1] + ', "seed": 1e999}').encode()
    assert how == "invalid-utf8"  # a byte that is never UTF-8, in a string
    return (text[:-1] + ', "colour": "').encode() + b'\xff"}'


ENCODINGS = ("plain", "plain", "plain", "unescaped", "duplicate-prompt", "overflow", "invalid-utf8")
ALWAYS_REFUSED = ("duplicate-prompt", "overflow", "invalid-utf8")


def check(entry: str, body: dict[str, Any], how: str) -> int:
    rt = entry_runtime()
    sent = encode(body, how)
    status, answer = send(rt, entry, sent)
    assert 200 <= status < 500, (status, answer)
    if status >= 400:
        assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message", "field"}, answer
        assert isinstance(answer["error"]["code"], str) and answer["error"]["message"], answer
        assert answer["error"]["field"] is None or isinstance(answer["error"]["field"], str), answer
        assert created(rt, entry) == ([], [], []), f"refused, yet left behind {created(rt, entry)}"
        return status
    assert how not in ALWAYS_REFUSED, (how, sent)
    accepted = json.loads(sent.decode("utf-8"))
    stored = the_job(rt)
    assert same(stored["metadata"], accepted.get("metadata")), (stored["metadata"], accepted.get("metadata"))
    assert same(stored["request"], {k: v for k, v in accepted.items() if k not in ROUTING and v is not None})
    assert stored["provider"] == accepted["provider"]
    view = job_view(stored)
    strict = json.dumps(view, allow_nan=False, ensure_ascii=False).encode("utf-8")  # raises on NaN or a lone surrogate
    assert json.loads(strict) == answer
    return status


@settings(max_examples=HOSTILE_EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(entry=st.sampled_from(ENTRIES), body=bodies(), how=st.sampled_from(ENCODINGS))
def test_any_body_is_refused_cleanly_or_stored_as_it_was_accepted(entry, body, how):
    status = check(entry, body, how)
    event("accepted" if status < 400 else "refused")  # the share of each: pytest --hypothesis-show-statistics


# --- valid bodies are accepted (the checks above must not refuse what Firestore can keep)
@settings(max_examples=VALID_EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(entry=st.sampled_from(ENTRIES), body=valid_bodies, how=st.sampled_from(["plain", "unescaped"]))
def test_a_valid_body_is_accepted_and_reads_back_equal(entry, body, how):
    assert check(entry, body, how) == 202
