"""Images are decoded, not just sniffed (core/images.py decode): real dimensions, a pixel limit,
one still frame, nothing missing and nothing after the end, the type the bytes start as is the
type that decodes. As a class: any mutation of a real image is either refused with BadImage or
decodes to what it says; nothing else ever escapes. And which gs:// objects a client may name."""
from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.steps.image_files import HOSTILE, image, jpeg, png, webp
from veorelay.core.images import (
    MAX_IMAGE_PIXELS,
    BadImage,
    decode,
    gcs_source_problem,
    input_object_name,
    uploads_folder,
)

# Pillow warns about a big header before decode() refuses it; production ignores it (core/images.py).
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


@pytest.mark.parametrize("data,mime,size", [
    (png((16, 12)), "image/png", (16, 12)),
    (jpeg((33, 7)), "image/jpeg", (33, 7)),
    (image("JPEG", (300, 200), progressive=True), "image/jpeg", (300, 200)),
    (image("JPEG", (40, 30), comment=b"shot on a phone", dpi=(300, 300)), "image/jpeg", (40, 30)),
    (webp((20, 10)), "image/webp", (20, 10)),
    (image("WEBP", (20, 10), lossless=True), "image/webp", (20, 10)),
    (image("PNG", (4096, 4096)), "image/png", (4096, 4096)),  # exactly at the pixel limit
])
def test_real_images_decode_with_their_dimensions(data, mime, size):
    info = decode(data)
    assert (info.mime, (info.width, info.height), info.sha256) == (mime, size, hashlib.sha256(data).hexdigest())


@pytest.mark.badinput
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_are_refused_with_the_reason(name):
    data, words = HOSTILE[name]
    with pytest.raises(BadImage) as refused:
        decode(data)
    assert words in str(refused.value), str(refused.value)


def test_the_pixel_limit_is_the_one_documented():
    assert MAX_IMAGE_PIXELS == 4096 * 4096
    with pytest.raises(BadImage, match="4097x4096"):
        decode(image("PNG", (4097, 4096)))


SEEDS = [png((24, 24)), jpeg((24, 24)), webp((24, 24)), image("JPEG", (24, 24), progressive=True)]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "append", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "append":
            data += draw(st.binary(min_size=1, max_size=64))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            del data[at:at + draw(st.integers(1, 16))]
    return bytes(data)


@pytest.mark.badinput
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(mutated(), st.binary(max_size=256)))
def test_any_bytes_are_refused_or_decode_to_what_they_say(data):
    try:
        info = decode(data)
    except BadImage as exc:
        assert str(exc)
        return
    assert info.mime in ("image/png", "image/jpeg", "image/webp") and 1 <= info.width <= 8192 and 1 <= info.height <= 8192


def test_an_inputs_name_carries_its_content_hash():
    info = decode(png())
    assert input_object_name("j" * 32, "reference_0", info) == f"inputs/{'j' * 32}/reference_0-{info.sha256[:32]}.png"


OWN = "veo-relay-bucket"


@pytest.mark.badinput
@pytest.mark.parametrize("bucket,name,client,allowed,words", [
    (OWN, "inputs/0123/image-ab.png", "acme", set(), "only under gs://veo-relay-bucket/uploads/acme/"),
    (OWN, "videos/0123/0.mp4", "acme", set(), "only under"),
    (OWN, "uploads/globex/frame.png", "acme", set(), "only under"),
    (OWN, "uploads/acme", "acme", set(), "only under"),
    (OWN, "uploads/acme-evil/frame.png", "acme", set(), "only under"),
    (OWN, "uploads/acme/../globex/frame.png", "acme", set(), "'..'"),
    (OWN, "uploads/acme//frame.png", "acme", set(), "empty"),
    (OWN, "uploads/acme/./frame.png", "acme", set(), "'.'"),
    (OWN, "requests/x.json", "bucket", set(), "only under gs://veo-relay-bucket/uploads/bucket/"),
    ("someone-elses-bucket", "frame.png", "acme", set(), "does not read images from"),
    ("someone-elses-bucket", "frame.png", "acme", {"another-bucket"}, "does not read images from"),
])
def test_gcs_sources_outside_what_the_deployment_allows_are_refused(bucket, name, client, allowed, words):
    problem = gcs_source_problem(bucket, name, OWN, client, frozenset(allowed))
    assert problem is not None and words in problem, problem


@pytest.mark.parametrize("bucket,name,client,allowed", [
    (OWN, "uploads/acme/frame.png", "acme", set()),
    (OWN, "uploads/acme/2026/shoot/frame.png", "acme", set()),
    (OWN, "uploads/default/frame.png", "default", set()),  # VEO_AUTH_DISABLED's anonymous client
    ("a-clients-bucket", "frames/first.png", "acme", {"a-clients-bucket"}),
])
def test_gcs_sources_the_deployment_allows(bucket, name, client, allowed):
    assert gcs_source_problem(bucket, name, OWN, client, frozenset(allowed)) is None
    assert uploads_folder(client) == f"uploads/{client}/"
