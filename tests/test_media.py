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


def test_an_inspected_image_is_decoded_once_and_keeps_its_facts_through_copies(pil_decodes):
    import copy
    import dataclasses
    import pickle

    from abstractvision.media import InspectedImage, inspect_image, inspected_image
    from abstractvision.types import ImageEditRequest

    data = make_png(40, 24)
    image = inspected_image(data)
    assert isinstance(image, InspectedImage) and image == data and (image.info.width, image.info.height) == (40, 24)
    assert inspected_image(image) is image and inspect_image(image) is image.info
    request = dataclasses.replace(ImageEditRequest("x", image), prompt="y")
    for kept in (request.image, pickle.loads(pickle.dumps(image)), copy.deepcopy(image)):
        assert isinstance(kept, InspectedImage) and kept.info == image.info
    assert pil_decodes.count(data) == 1


def test_an_inspected_image_is_still_held_to_a_smaller_pixel_limit():
    from abstractvision.media import inspect_image, inspected_image

    image = inspected_image(make_png(40, 24))
    with pytest.raises(InvalidRequestError, match="over the limit of 100") as info:
        inspect_image(image, "mask", max_pixels=100)
    assert info.value.field == "mask"
