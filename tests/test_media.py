"""Sniffing, image validation and PNG provenance on real encoded bytes."""

from __future__ import annotations

import io

import pytest

from abstractvision.errors import InvalidRequestError
from abstractvision.media import (
    embed_png_metadata,
    encode_png,
    extension_for,
    inspect_image,
    read_png_metadata,
    sniff_mime_type,
)
from fixtures.images import make_jpeg, make_png


def _encoded(fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data,mime",
    [
        (make_png(), "image/png"),
        (make_jpeg(), "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"GIF89a" + b"\x00" * 10, "image/gif"),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 8, "video/mp4"),
        (b"\x1a\x45\xdf\xa3" + b"\x00" * 8, "video/webm"),
        (b"hello", None),
        (b"", None),
    ],
)
def test_sniff(data, mime):
    assert sniff_mime_type(data) == mime


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP"])
def test_real_encodings_are_sniffed_and_inspected(fmt):
    data = _encoded(fmt)
    info = inspect_image(data)
    assert (info.width, info.height) == (8, 8)
    assert extension_for(info.mime_type) == {"JPEG": ".jpg"}.get(fmt, "." + fmt.lower())


def test_inspect_rejects_truncated_images():
    with pytest.raises(InvalidRequestError, match="could not be decoded") as info:
        inspect_image(make_jpeg(200, 200)[:300], field="mask")
    assert info.value.field == "mask"


def test_png_metadata_round_trip_and_replacement():
    png = make_png()
    once = embed_png_metadata(png, {"seed": 1, "prompt": "un chat élégant"})
    assert read_png_metadata(once) == {"seed": 1, "prompt": "un chat élégant"}
    twice = embed_png_metadata(once, {"seed": 2})
    assert read_png_metadata(twice) == {"seed": 2}
    assert twice.count(b"iTXt") == 1
    from PIL import Image

    with Image.open(io.BytesIO(twice)) as img:
        img.load()  # CRCs valid: Pillow verifies them while reading chunks
        assert img.size == (64, 64)
    assert read_png_metadata(png) is None
    assert embed_png_metadata(b"not a png", {"a": 1}) == b"not a png"


def test_encode_png_embeds_metadata():
    from PIL import Image

    data = encode_png(Image.new("RGB", (4, 4)), {"steps": 3})
    assert read_png_metadata(data) == {"steps": 3}
