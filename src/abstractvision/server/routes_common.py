"""Pieces several route modules share: the documented error responses and reading uploads."""

from __future__ import annotations

from fastapi import UploadFile

from .errors import APIError
from .schemas import ErrorResponse
from .settings import ServerConfig

#: Error statuses every ``/v1`` route may answer, in OpenAI's error shape.
ERROR_RESPONSES: dict[int | str, dict] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Invalid request (the message names the field)",
        401: "Missing or invalid API key",
        404: "Not found (or not the caller's)",
        413: "Body or pixels over the server's limits",
        429: "Queue full (see Retry-After)",
        500: "Engine failure",
        502: "The upstream service failed",
        503: "Not ready or shutting down",
        504: "Timed out",
        # any other (405 method not allowed, ...); it also stands for FastAPI's 422, never sent (validation is a 400)
        "4XX": "Another client error",
    }.items()
}


async def read_upload(upload: UploadFile, field: str, config: ServerConfig) -> bytes:
    """An uploaded image's bytes, checked (the body limit already bounds their size)."""
    return check_input_image(await upload.read(), field, config)


def check_input_image(data: bytes, field: str, config: ServerConfig) -> bytes:
    """``data`` if it is an image within the server's pixel limit: 400 if not an image, 413 if too big.

    Only the header is read here; the manager decodes it once when the job runs.
    """
    if not data:
        raise APIError(400, f"{field}: the uploaded file is empty", param=field, code="invalid_image")
    from ..media import inspect_image

    info = inspect_image(data, field)
    if info.width * info.height > config.max_pixels:
        raise APIError(
            413,
            f"{field}: {info.width}x{info.height} is over this server's limit of {config.max_pixels} pixels",
            param=field,
            code="too_many_pixels",
        )
    return data


__all__ = ["ERROR_RESPONSES", "check_input_image", "read_upload"]
