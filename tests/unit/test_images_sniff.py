"""Images are judged by their bytes, and the request names exactly where each one comes from."""
import pytest

from veorelay.core.errors import ApiError
from veorelay.core.images import sniff
from veorelay.core.request import parse_request


@pytest.mark.parametrize("head,mime", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"GIF89a", None),
    (b"<svg xmlns=", None),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
    (b"", None),
])
def test_sniff_by_magic_bytes(head, mime):
    assert sniff(head) == mime


def test_an_image_is_one_source_and_a_stored_one_round_trips():
    req = parse_request({"prompt": "p", "image": {"url": "https://example.com/a.png"},
                         "reference_images": [{"image": {"gcs_uri": "gs://my-bucket/a.png"}}]})
    assert req.options() == {"image", "reference_images"}
    assert req.reference_images[0].type == "asset"
    assert [field for field, _ in req.images()] == ["image", "reference_images.0.image"]
    stored = req.model_dump(exclude_none=True)
    assert parse_request(stored) == req


@pytest.mark.badinput
@pytest.mark.parametrize("fields,field", [
    ({"image": {}}, "image"),
    ({"image": {"url": "https://a/b", "upload": "x"}}, "image"),
    ({"image": {"base64": "QUJD"}}, "image"),
    ({"image": {"base64": "QUJD", "mime_type": "image/gif"}}, "image.mime_type"),
    ({"image": {"gcs_uri": "s3://bucket/a.png"}}, "image.gcs_uri"),
    ({"image": {"url": "ftp://a/b.png"}}, "image"),
    ({"image": {"url": "https://a/b", "colour": 1}}, "image.colour"),
    ({"reference_images": []}, "reference_images"),
    ({"reference_images": [{"image": {"url": "https://a/b"}, "type": "mood"}]}, "reference_images.0.type"),
    ({"last_frame": {"url": "https://a/b"}}, "last_frame"),
])
def test_bad_image_fields_are_named(fields, field):
    with pytest.raises(ApiError) as caught:
        parse_request({"prompt": "p", **fields})
    assert caught.value.status == 400 and caught.value.code == "invalid_request" and caught.value.field == field
