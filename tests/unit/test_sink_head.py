from veorelay.gcp.sink import is_mp4_head


def test_mp4_head_needs_an_ftyp_box():
    assert is_mp4_head(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00")
    assert not is_mp4_head(b"<!DOCTYPE html><html>")
    assert not is_mp4_head(b"\x00\x00\x00\x20ftyp")  # too short to hold a brand
