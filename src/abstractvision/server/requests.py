"""From a validated wire body to a job: which task, the manager's fields, what the record keeps.

The manager does the real validation (its messages name the field); this module only does what
is the server's own: the served model, ``size`` strings, the server's limits on ``n`` and pixels,
and input images decoded from base64 or uploads. Unknown body fields go to the backend's ``extra``.
An upscale's ``size`` (or ``width`` and ``height``) is the ``resolution`` it asks for, and it makes one
image (``n`` 1).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from ..backends.base_backend import UPSCALE_TASK
from .adapters import read_lora
from .errors import APIError
from .settings import ServerConfig

#: Body fields that steer the server or the response, never the backend.
_CONTROL_FIELDS = frozenset(
    {
        "model",
        "n",
        "size",
        "response_format",
        "output_format",
        "output_compression",
        "stream",
        "partial_images",
        "task",
        "image",
        "images",
        "mask",
        "reference_image",
        "seconds",
        "input_reference",
        "lora",
        "lora_adapters",
    }
)
#: OpenAI request fields that only mean something to OpenAI's own models; dropped unless the
#: backend is an HTTP service that may understand them (passed through in ``extra`` there).
_OPENAI_ONLY = frozenset({"quality", "style", "background", "moderation", "user", "input_fidelity"})

#: Input image fields whose bytes are stored and referenced by file id in the job record.
INPUT_FIELDS = ("image", "mask", "reference_image")


@dataclass
class Submission:
    """A job ready to queue: the task, the record's request and the runner's fields."""

    task: str
    request: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)  # field -> bytes (or list of bytes)

    @property
    def response_format(self) -> str:
        return self.request.get("response_format") or "b64_json"


def parse_size(size: str | None, field_name: str = "size") -> tuple[int, int] | None:
    """``"1024x768"`` -> (1024, 768); ``None``/``"auto"`` -> ``None`` (the backend's default)."""
    if size is None or size == "auto":
        return None
    width, sep, height = size.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
        raise APIError(
            400,
            f"{field_name}: expected 'WIDTHxHEIGHT' (e.g. 512x512) or 'auto', got {size!r}",
            param=field_name,
            code="invalid_size",
        )
    return int(width), int(height)


def build_submission(
    task: str,
    body: dict[str, Any],
    config: ServerConfig,
    served_models: tuple[str, ...],
    *,
    passthrough_openai_fields: bool,
) -> Submission:
    """Check the server's own rules on ``body`` (a model dump, extras included) and split it up.

    ``lora`` becomes the manager's ``lora_adapters``, read but not yet held to the backend's list
    (:meth:`~abstractvision.server.service.ImageService.submit` does that); ``lora_adapters`` itself
    is refused, so no body reaches the manager's adapters around that check.
    """
    model = served_model(body.get("model"), served_models)
    if body.get("lora_adapters") is not None:
        raise APIError(
            400,
            "lora_adapters: this server takes adapters in the 'lora' field (GET /v1/adapters lists them)",
            param="lora_adapters",
        )
    n = body.get("n") or 1
    if n > config.max_n:
        raise APIError(400, f"n: at most {config.max_n} images per request (got {n})", param="n", code="too_many")
    if task == UPSCALE_TASK and n != 1:
        raise APIError(400, f"n: an upscale makes one image (got {n})", param="n", code="too_many")
    fields: dict[str, Any] = {}
    size = parse_size(body.get("size"))
    if size is not None:
        fields["width"], fields["height"] = size
    for key, value in body.items():
        if value is None or key in _CONTROL_FIELDS:
            continue
        if key in _OPENAI_ONLY and not passthrough_openai_fields:
            continue
        fields[key] = value
    if body.get("lora") is not None:
        adapters = read_lora(task, body["lora"])
        if adapters:
            fields["lora_adapters"] = adapters
    width, height = fields.get("width"), fields.get("height")
    if width and height and width * height > config.max_pixels:
        raise APIError(
            413,
            f"size: {width}x{height} is over this server's limit of {config.max_pixels} pixels",
            param="size",
            code="too_many_pixels",
        )
    if task == UPSCALE_TASK and (width or height):
        if not (width and height):
            raise APIError(400, "size: an upscale's size needs both width and height", param="size")
        fields["resolution"] = (fields.pop("width"), fields.pop("height"))
    request = {
        "fields": fields,
        "n": n,
        "model": model,
        "response_format": body.get("response_format") or "b64_json",
        "output_format": body.get("output_format"),
        "output_compression": body.get("output_compression"),
        "size": body.get("size"),
    }
    return Submission(task, request)


def served_model(model: str | None, served_models: tuple[str, ...]) -> str:
    """``model``, or the default when it is ``None``; 404 ``model_not_found`` when it is not served."""
    model = model or served_models[0]
    if model not in served_models:
        raise APIError(
            404,
            f"model {model!r} is not served here; this server serves {', '.join(served_models)} (GET /v1/models)",
            param="model",
            code="model_not_found",
        )
    return model


def check_upscale_pixels(submission: Submission, config: ServerConfig) -> None:
    """413 when an upscale's ``scale`` would make more pixels than the server allows (its ``size`` was
    checked with the body); the engine's own factor, with neither given, is checked when it is known."""
    scale = submission.request["fields"].get("scale")
    image = submission.inputs.get("image")
    if submission.task != UPSCALE_TASK or not scale or image is None:
        return
    from ..media import inspect_image
    from ..validation import upscale_size

    info = inspect_image(image, "image")
    width, height = upscale_size(info.width, info.height, scale, None)
    if width * height > config.max_pixels:
        raise APIError(
            413,
            f"scale: {info.width}x{info.height} x {scale:g} = {width}x{height} is over this server's limit of "
            f"{config.max_pixels} pixels",
            param="scale",
            code="too_many_pixels",
        )


def decode_base64_image(value: str, field_name: str) -> bytes:
    """Base64 (or a ``data:`` URL) -> bytes; the manager checks that they are an image."""
    text = value.partition(",")[2] if value.startswith("data:") else value
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, f"{field_name}: not valid base64", param=field_name, code="invalid_base64") from None
    if not data:
        raise APIError(400, f"{field_name}: empty", param=field_name, code="invalid_image")
    return data


__all__ = [
    "INPUT_FIELDS",
    "Submission",
    "build_submission",
    "check_upscale_pixels",
    "decode_base64_image",
    "parse_size",
    "served_model",
]
