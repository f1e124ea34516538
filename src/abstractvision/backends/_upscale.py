"""What every upscaling backend does after its engine ran: bring the picture to the size asked for.

Why here: engines upscale by their own fixed factor (Diffusers' x4 upscaler, an ESRGAN x4 or x2
model, several passes of it), but a request asks for ``scale=`` or ``resolution=``. So each
backend runs its engine, then hands the picture to :func:`fit_upscaled`, which resizes it with
Pillow (Lanczos) to exactly :func:`~abstractvision.validation.upscale_size`, and says in the
metadata what the engine made and whether it was resized. Without ``scale`` and ``resolution`` the
result is the image times the engine's factor (its output, rounded to that multiple: the x4
pipeline crops inputs to a multiple of 4 before upscaling).
"""

from __future__ import annotations

from typing import Any

from ..media import inspect_image
from ..types import ImageUpscaleRequest
from ..validation import upscale_size


def fit_upscaled(picture: Any, request: ImageUpscaleRequest) -> tuple[Any, dict[str, Any]]:
    """``(picture resized to the requested size, metadata)`` for an engine's ``picture`` (a PIL image)."""
    source = inspect_image(request.image, "image")  # an InspectedImage: no decode here
    made = picture.size
    factor = max(1, round(made[0] / source.width))  # the engine's own factor (all its passes)
    target = upscale_size(source.width, source.height, request.scale, request.resolution) or (
        source.width * factor,
        source.height * factor,
    )
    metadata: dict[str, Any] = {
        "source_width": source.width,
        "source_height": source.height,
        "engine_scale": factor,
        "width": target[0],
        "height": target[1],
    }
    if request.scale is not None:
        metadata["scale"] = request.scale
    if request.resolution is not None:
        metadata["resolution"] = list(target)
    if made != target:
        from PIL import Image

        picture = picture.resize(target, Image.Resampling.LANCZOS)
        metadata["resized_from"] = list(made)
    return picture, metadata


def prompt_fields(request: ImageUpscaleRequest) -> list[str]:
    """The prompt-guidance fields a request set: an engine without a prompt lists them as ignored."""
    names = ("prompt", "negative_prompt", "steps", "guidance_scale", "seed")
    return [name for name in names if getattr(request, name) is not None]


__all__ = ["fit_upscaled", "prompt_fields"]
