"""Reading OpenAI-shaped answers: ``data[]`` items, base64 and URL media, streamed events.

Why strict: a truncated base64 string or a half-sent file still decodes to bytes that *start* like a
PNG, and would be stored as a broken image. Every item is checked for a known media type and a
complete file, and an image's structure and size are read (within the pixel limit) before it
becomes a :class:`~abstractvision.types.GeneratedAsset`: a PNG signature, garbage and an ``IEND``
trailer is not a PNG.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import zlib
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidProviderResponseError
from ..media import MAX_INPUT_PIXELS, media_type_of, sniff_mime_type
from ._http import HttpCall

#: Request fields recorded as provenance in ``GeneratedAsset.metadata`` (never the key).
PROVENANCE_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "negative_prompt",
        "seed",
        "steps",
        "guidance_scale",
        "width",
        "height",
        "size",
        "fps",
        "num_frames",
        "seconds",
        "quality",
        "style",
        "background",
        "output_format",
    }
)


def _invalid(message: str, status: int | None = 200) -> InvalidProviderResponseError:
    return InvalidProviderResponseError(message, status=status)


def is_complete(data: bytes, mime: str) -> bool:
    """Whether encoded media ends where its format says it ends (no decode, bytes only)."""
    if mime == "image/png":
        return data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")
    if mime == "image/jpeg":
        return b"\xff\xd9" in data[-32:]
    if mime == "image/webp":
        return len(data) >= 12 and struct.unpack("<I", data[4:8])[0] + 8 <= len(data)
    if mime == "image/gif":
        return data.rstrip(b"\x00").endswith(b";")
    if mime in ("video/mp4", "video/quicktime"):
        return _boxes_complete(data)
    return True


def _boxes_complete(data: bytes) -> bool:
    """ISO media files are a chain of sized boxes; a cut file leaves the last box short."""
    pos = 0
    while pos + 8 <= len(data):
        size = struct.unpack(">I", data[pos : pos + 4])[0]
        if size == 1 and pos + 16 <= len(data):
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        if size == 0:
            return True  # box runs to the end of the file
        if size < 8:
            return False
        pos += size
    return pos == len(data)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a well-formed PNG: ``IHDR`` first, every chunk whole with a right CRC,
    image data, then ``IEND``. Raises ``ValueError`` saying what is wrong."""
    if data[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise ValueError("its first chunk is not a 13-byte IHDR")
    view, end, pos, has_data = memoryview(data), len(data), 8, False
    while True:
        if pos + 12 > end:
            raise ValueError(f"it ends inside a chunk header at byte {pos}")
        length, kind = struct.unpack_from(">I4s", data, pos)
        stop = pos + 12 + length
        if stop > end:
            raise ValueError(f"its {kind!r} chunk runs {stop - end} bytes past the end")
        if zlib.crc32(view[pos + 4 : stop - 4]) != struct.unpack_from(">I", data, stop - 4)[0]:
            raise ValueError(f"its {kind!r} chunk at byte {pos} fails its CRC")
        if kind == b"IEND":
            break
        has_data = has_data or kind == b"IDAT"
        pos = stop
    width, height = struct.unpack_from(">II", data, 16)
    if not (width and height and has_data):
        raise ValueError(f"it declares {width}x{height} pixels and {'some' if has_data else 'no'} image data")
    return width, height


def check_image(data: bytes, source: str, mime: str, max_pixels: int = MAX_INPUT_PIXELS) -> None:
    """Raise unless ``data`` is a readable ``mime`` image within ``max_pixels``, without decoding pixels.

    A PNG (what services answer by default) is read chunk by chunk here: about 2 microseconds for a
    small image and 1 ms per 3 MB, where opening it with Pillow costs 20 microseconds even for 8x8,
    which is most of the backend's overhead over a raw HTTP request, and a full decode
    (:func:`abstractvision.media.inspect_image`) 8-15 ms at 1024x1024. Other formats are opened with
    Pillow (header and size).
    """
    try:
        if mime == "image/png":
            width, height = png_size(data)
        else:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise _invalid(f"{source} is not a readable {mime} image: {exc}; nothing was kept") from None
    if width * height > max_pixels:
        raise _invalid(f"{source} is a {width}x{height} image, over the limit of {max_pixels} pixels")


def checked_media(data: bytes, source: str, expected: str) -> str:
    """The MIME type of ``data``; raises unless it is complete media of the ``expected`` kind."""
    mime = sniff_mime_type(data)
    if mime is None or media_type_of(mime) != expected:
        raise _invalid(f"{source} is not {expected} data (starts with {data[:12]!r})")
    if not is_complete(data, mime):
        raise _invalid(f"{source} is a truncated {mime} file ({len(data)} bytes); nothing was kept")
    if expected == "image":
        check_image(data, source, mime)
    return mime


def decode_b64(value: Any, source: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise _invalid(f"{source}: b64_json is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid(f"{source}: b64_json is not valid base64 ({exc}); the answer was cut or corrupted") from None


def media_items(payload: Any, source: str) -> list[dict[str, Any]]:
    """The ``data`` list of an answer, each item holding ``b64_json`` or ``url``."""
    items = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise _invalid(f"{source} answered without a data list: {str(payload)[:300]!r}")
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not (item.get("b64_json") or item.get("url")):
            raise _invalid(f"{source}: data[{index}] has neither b64_json nor url")
    return items


def download_call(url: Any) -> HttpCall:
    """A GET for a result URL, part of the exchange that produced it; http(s) only.

    The transport sends credentials only when the URL is on the service's own origin.
    """
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid(f"refusing to download result url {str(url)[:200]!r}: only http and https URLs are fetched")
    return HttpCall("GET", url, continues=True)


def streamed_payload(events: tuple[dict[str, Any], ...], source: str) -> dict[str, Any]:
    """The ``*.completed`` event of a streamed image answer, as a regular ``data[]`` answer."""
    for event in reversed(events):
        if str(event.get("type", "")).endswith(".completed"):
            item = {key: event[key] for key in ("b64_json", "seed", "revised_prompt") if key in event}
            payload: dict[str, Any] = {"data": [item]}
            for key in ("usage", "created_at", "created"):
                if event.get(key) is not None:
                    payload["created" if key == "created_at" else key] = event[key]
            return payload
    raise _invalid(f"{source} streamed {len(events)} event(s) but no completed image")


def provenance(fields: dict[str, Any], payload: dict[str, Any], item: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """Metadata for one asset: what was sent, and the provider's extras (revised prompt, usage, created)."""
    metadata = {name: value for name, value in fields.items() if name in PROVENANCE_FIELDS and value is not None}
    metadata["endpoint"] = endpoint
    if item.get("revised_prompt"):
        metadata["revised_prompt"] = item["revised_prompt"]
    seed = item.get("seed")  # a server that says which seed it drew (abstractvision serve does)
    if "seed" not in metadata and isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
        metadata["seed"] = seed
    for key in ("usage", "created"):
        if payload.get(key) is not None:
            metadata[key] = payload[key]
    return metadata


__all__ = [
    "PROVENANCE_FIELDS",
    "check_image",
    "checked_media",
    "decode_b64",
    "download_call",
    "is_complete",
    "png_size",
    "media_items",
    "provenance",
    "streamed_payload",
]
