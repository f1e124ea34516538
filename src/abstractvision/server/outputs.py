"""Results on their way out: encoded as the client asked, stored, and shaped as OpenAI's items.

Every result is stored (content-addressed, so a repeat costs nothing) before anyone sees it: a
client that asked for ``b64_json`` and hung up can still fetch it by job, and ``url`` answers
point at ``GET /v1/files/{id}``.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from ..artifacts import artifact_id_of
from ..types import GeneratedAsset

#: OpenAI's ``output_format`` values -> (Pillow format, MIME type).
OUTPUT_FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}


def encode_as(asset: GeneratedAsset, output_format: str | None, compression: int | None) -> tuple[bytes, str]:
    """The asset's bytes in ``output_format`` (images only; PNG and videos pass through)."""
    if asset.media_type != "image" or output_format in (None, "png") and asset.mime_type == "image/png":
        return asset.data, asset.mime_type
    pil_format, mime = OUTPUT_FORMATS[output_format or "png"]
    if asset.mime_type == mime:
        return asset.data, mime
    from ..media import decode_image

    image = decode_image(asset.data, mode=None if pil_format != "JPEG" else "RGB")
    buffer = io.BytesIO()
    quality = 100 - compression if compression is not None else 90
    image.save(buffer, format=pil_format, **({} if pil_format == "PNG" else {"quality": quality}))
    return buffer.getvalue(), mime


def store_result(store: Any, asset: GeneratedAsset, request: dict[str, Any]) -> dict[str, Any]:
    """Store one result; the item a job record keeps (file id, type, seed, provenance)."""
    data, mime = encode_as(asset, request.get("output_format"), request.get("output_compression"))
    ref = store.store_bytes(data, content_type=mime, metadata=asset.metadata)
    return {
        "file_id": artifact_id_of(ref),
        "content_type": mime,
        "seed": asset.metadata.get("seed"),
        "metadata": asset.metadata,
    }


def response_item(store: Any, item: dict[str, Any], response_format: str, base_url: str) -> dict[str, Any]:
    """An OpenAI ``data[]`` entry for a stored result: ``b64_json`` or ``url``, plus ``seed`` and ``metadata``."""
    entry: dict[str, Any] = {}
    if response_format == "url":
        entry["url"] = f"{base_url.rstrip('/')}/v1/files/{item['file_id']}"
    else:
        entry["b64_json"] = base64.b64encode(store.load_bytes(item["file_id"])).decode("ascii")
    revised = item["metadata"].get("revised_prompt")
    if revised:
        entry["revised_prompt"] = revised
    entry["seed"] = item.get("seed")
    entry["metadata"] = item["metadata"]
    return entry


__all__ = ["OUTPUT_FORMATS", "encode_as", "response_item", "store_result"]
