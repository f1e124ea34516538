"""Image and video bytes: sniff, decode, validate, embed provenance.

Sniffing and PNG metadata work on raw bytes (no Pillow) so they stay cheap on the hot path;
Pillow is imported inside the functions that decode, never at module import.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidRequestError

#: Largest input image the library decodes (pixels). Pillow's own bomb guard is 89 M pixels and
#: only warns below 2x that; an edit input larger than 8192x8192 is a mistake or an attack.
MAX_INPUT_PIXELS = 8192 * 8192

#: PNG text-chunk keyword under which generation parameters are embedded.
PNG_METADATA_KEY = "abstractvision"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "application/octet-stream": ".bin",
}


def sniff_mime_type(data: bytes) -> str | None:
    """The media type of encoded bytes from their magic numbers, or ``None`` if unknown."""
    head = data[:32]
    if head.startswith(_PNG_SIGNATURE):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:2] == b"BM":
        return "image/bmp"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:10] == b"qt" else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


def media_type_of(mime_type: str) -> str:
    """``image`` or ``video`` for a MIME type."""
    return "video" if mime_type.startswith("video/") else "image"


def extension_for(mime_type: str) -> str:
    """File extension (with the dot) for a MIME type; ``.bin`` when unknown."""
    return _EXTENSIONS.get(mime_type, ".bin")


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mime_type: str
    mode: str


class InspectedImage(bytes):
    """Image bytes that :func:`inspect_image` has decoded once, carrying what it found in ``info``.

    Why a bytes subclass: the facts travel with the bytes through every ``dataclasses.replace`` of a
    request and every backend hook, so nothing decodes the same input twice, and code that only
    wants bytes (a file write, a multipart part, equality) sees plain bytes. Made by
    :func:`inspected_image`; the manager hands backends requests whose image fields are these.
    """

    info: ImageInfo

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (a process pool, a Ray replica) keep the facts
        return _rebuild_inspected, (bytes(self), self.info)


def _rebuild_inspected(data: bytes, info: ImageInfo) -> InspectedImage:
    image = InspectedImage(data)
    image.info = info
    return image


def inspected_image(data: Any, field: str = "image") -> InspectedImage:
    """``data`` as an :class:`InspectedImage`: decoded (and checked) now unless it already is one."""
    if isinstance(data, InspectedImage):
        return data
    return _rebuild_inspected(data, inspect_image(data, field))


def inspect_image(data: Any, field: str = "image", max_pixels: int = MAX_INPUT_PIXELS) -> ImageInfo:
    """Check that ``data`` is a decodable image within the pixel limit; raise naming ``field``.

    Why decode fully: a truncated file passes a header check and then fails deep inside an engine.
    An :class:`InspectedImage` was decoded already: only its pixel count is checked again.
    """
    if isinstance(data, InspectedImage):
        _check_pixels(data.info.width, data.info.height, field, max_pixels)
        return data.info
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidRequestError(
            f"{field} must be encoded image bytes (PNG/JPEG/WEBP), got {type(data).__name__}", field=field
        )
    data = bytes(data)
    if not data:
        raise InvalidRequestError(f"{field} is empty: pass the bytes of a PNG, JPEG or WEBP image", field=field)
    mime = sniff_mime_type(data)
    if mime is None or not mime.startswith("image/"):
        raise InvalidRequestError(
            f"{field} is not a supported image (expected PNG, JPEG, WEBP, GIF or BMP bytes)", field=field
        )
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            _check_pixels(width, height, field, max_pixels)
            mode = img.mode
            img.load()
    except InvalidRequestError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise InvalidRequestError(f"{field} could not be decoded as an image: {exc}", field=field) from None
    return ImageInfo(width=width, height=height, mime_type=mime, mode=mode)


def _check_pixels(width: int, height: int, field: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InvalidRequestError(
            f"{field} is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}; resize it first",
            field=field,
        )


def decode_image(data: bytes, mode: str | None = "RGB"):
    """Decode to a ``PIL.Image`` (converted to ``mode`` unless ``None``). Validate first."""
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.load()
    return img.convert(mode) if mode and img.mode != mode else img


def encode_png(image: Any, metadata: dict[str, Any] | None = None, compress_level: int = 1) -> bytes:
    """Encode a ``PIL.Image`` as PNG, with ``metadata`` embedded as a JSON text chunk.

    ``compress_level=1``: generated images are noisy, so higher levels cost time and save little.
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    data = buffer.getvalue()
    return embed_png_metadata(data, metadata) if metadata else data


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def embed_png_metadata(data: bytes, metadata: dict[str, Any], key: str = PNG_METADATA_KEY) -> bytes:
    """Insert (or replace) an ``iTXt`` chunk holding ``metadata`` as JSON; non-PNG bytes pass through.

    Works on the byte stream, no decode: the chunk goes right after ``IHDR``.
    """
    if not data.startswith(_PNG_SIGNATURE):
        return data
    text = json.dumps(metadata, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    new_chunk = _chunk(b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text)
    out = [data[:8]]
    pos = 8
    inserted = False
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        chunk = data[pos:end]
        is_ours = kind == b"iTXt" and data[pos + 8 : pos + 8 + len(key) + 1] == key.encode("latin-1") + b"\x00"
        if not is_ours:
            out.append(chunk)
        if kind == b"IHDR" and not inserted:
            out.append(new_chunk)
            inserted = True
        pos = end
    return b"".join(out)


def read_png_metadata(data: bytes, key: str = PNG_METADATA_KEY) -> dict[str, Any] | None:
    """The metadata embedded by :func:`embed_png_metadata`, or ``None``."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    pos = 8
    prefix = key.encode("latin-1") + b"\x00"
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        payload = data[pos + 8 : pos + 8 + length]
        if kind == b"iTXt" and payload.startswith(prefix):
            # keyword\0 compression-flag compression-method language\0 translated\0 text
            rest = payload[len(prefix) + 2 :]
            _lang, _, rest = rest.partition(b"\x00")
            _translated, _, text = rest.partition(b"\x00")
            return json.loads(text.decode("utf-8"))
        if kind == b"IEND":
            break
        pos += 12 + length
    return None


def read_input_bytes(value: Any, field: str) -> bytes:
    """Accept image input as bytes or a filesystem path; anything else is a typed error.

    Any path the OS refuses (too long, unreadable, a NUL in it, an unknown ``~user``) is the
    caller's input error, named as such.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (str, os.PathLike)):
        shown = repr(os.fspath(value))
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        try:
            path = Path(value).expanduser()
            data = path.read_bytes() if path.is_file() else None
        except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: expanduser of an unknown ~user
            reason = getattr(exc, "strerror", None) or str(exc)
            raise InvalidRequestError(f"{field}: cannot read the file {shown}: {reason}", field=field) from None
        if data is None:
            raise InvalidRequestError(f"{field}: no such file {shown}", field=field)
        return data
    raise InvalidRequestError(f"{field} must be image bytes or a file path, got {type(value).__name__}", field=field)


__all__ = [
    "ImageInfo",
    "InspectedImage",
    "MAX_INPUT_PIXELS",
    "PNG_METADATA_KEY",
    "decode_image",
    "embed_png_metadata",
    "encode_png",
    "extension_for",
    "inspect_image",
    "inspected_image",
    "media_type_of",
    "read_input_bytes",
    "read_png_metadata",
    "sniff_mime_type",
]
