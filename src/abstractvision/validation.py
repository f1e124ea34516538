"""Reject bad requests before any backend work, naming the offending field.

Why here and not in each backend: every engine would otherwise discover a negative width or a
corrupt mask in its own way (a CUDA error, an HTTP 400, a segfault), after loading weights or
spending money. The checks are engine-independent; model-specific limits belong to the
backends' ``normalize_*`` hooks.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from collections.abc import Sequence
from typing import Any

from .errors import CapabilityNotSupportedError, InvalidRequestError
from .lora import as_lora_adapters
from .types import DEFAULT_MAX_SEED, VisionBackendCapabilities

#: Largest value of an integer field (width, steps, ...) whose backend states no limit: a C ``int``,
#: what engines take these as. Model limits are the backends' business (``normalize_*`` hooks).
MAX_INT = 2**31 - 1

#: Largest ``scale`` an upscale request may ask for.
MAX_UPSCALE = 16

#: Most items one batch call may make (``count=`` or ``len(seeds)``).
MAX_BATCH_ITEMS = 1000

#: Longest prompt (and negative prompt) accepted, in characters. It is the largest prompt limit
#: OpenAI documents, and it keeps a prompt one command-line argument for sd-cli: Linux caps a
#: single argument at 128 KiB, and 32,000 characters are at most 128,000 bytes of UTF-8.
MAX_PROMPT_CHARS = 32_000

#: Request fields that carry an input image, in the order they are checked.
_IMAGE_FIELDS = ("image", "mask", "control_image", "reference_image")

#: Requests that need a prompt; image_to_video and upscaling may run without one.
_PROMPT_REQUIRED = {"text_to_image", "image_to_image", "text_to_video", "multi_view_image"}


def _fail(field: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"{field}: {message}", field=field)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    """``value`` for a message, bounded: a 40,000-character prompt or a 10**5000 must not become
    the message (and Python refuses to print an int of more than 4,300 digits at all)."""
    if _is_int(value) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit integer"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_text(field: str, value: Any, required: bool) -> None:
    if value is None:
        if required:
            raise _fail(field, "is required")
        return
    if not isinstance(value, str):
        raise _fail(field, f"must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise _fail(field, "must not be empty")
    if len(value) > MAX_PROMPT_CHARS:
        raise _fail(field, f"is {len(value)} characters long, over the limit of {MAX_PROMPT_CHARS}")
    check_c_text(field, value)


def check_c_text(field: str, value: str) -> None:
    """Refuse text no engine can carry: engines hand text to C as NUL-terminated UTF-8, so a NUL
    would end it early (a command line cannot hold one at all), and a lone surrogate (text that was
    decoded wrongly) cannot be encoded, for an engine or an HTTP body."""
    if "\x00" in value:
        raise _fail(field, f"must not contain NUL characters (one at index {value.index(chr(0))})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _fail(
            field, f"is not valid Unicode text: a lone surrogate at index {exc.start} (was it decoded as UTF-8?)"
        ) from None


def check_positive_int(field: str, value: Any, maximum: int | None = None, minimum: int = 1) -> None:
    if value is None:
        return
    if not _is_int(value):
        raise _fail(field, f"must be an integer, got {type(value).__name__} {_shown(value)}")
    if value < minimum:
        raise _fail(field, f"must be >= {minimum}, got {_shown(value)}")
    if maximum is not None and value > maximum:
        raise _fail(field, f"{_shown(value)} is over this backend's maximum of {maximum}")
    if value > MAX_INT:
        raise _fail(field, f"{_shown(value)} is over the largest accepted value, {MAX_INT}")


def check_number(field: str, value: Any, minimum: float | None = None, maximum: float | None = None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(field, f"must be a number, got {type(value).__name__} {_shown(value)}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int beyond float range: no engine can use it
        finite = False
    if not finite:
        raise _fail(field, f"must be a finite number, got {_shown(value)}")
    if minimum is not None and value < minimum:
        raise _fail(field, f"must be >= {minimum}, got {_shown(value)}")
    if maximum is not None and value > maximum:
        raise _fail(field, f"must be <= {maximum}, got {_shown(value)}")


def check_seed(field: str, value: Any, maximum: int = DEFAULT_MAX_SEED) -> None:
    """Seeds run from 0 to the engine's ``maximum``: above it an engine wraps the seed onto another
    one (or, below 0, picks a random one), so the recorded seed would not reproduce the result."""
    if value is None:
        return
    if not _is_int(value):
        raise _fail(field, f"must be an integer in 0..{maximum}, got {type(value).__name__} {_shown(value)}")
    if not 0 <= value <= maximum:
        raise _fail(field, f"must be in 0..{maximum} (this backend's seed range), got {_shown(value)}")


def random_seed(maximum: int = DEFAULT_MAX_SEED) -> int:
    """The seed a backend picks when the request has none (then recorded, so the result reproduces)."""
    return secrets.randbelow(maximum + 1)


def check_size_step(
    field: str,
    value: int,
    step: int,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    label: str | None = None,
    subject: str = "this model",
) -> None:
    """Refuse a size that is not a multiple of ``step`` within ``minimum..maximum``, offering the
    nearest valid sizes (what a model's latent grid takes)."""
    low = -(-(minimum or step) // step) * step  # the smallest valid size
    high = maximum // step * step if maximum is not None else None
    if value % step == 0 and low <= value and (high is None or value <= high):
        return
    candidates = {value // step * step, -(-value // step) * step}
    nearest = sorted({min(max(size, low), high) if high is not None else max(size, low) for size in candidates})
    span = f" from {low} to {high}" if high is not None else (f" from {low}" if minimum else "")
    raise InvalidRequestError(
        f"{label or field}: {value} is not a size {subject} can take (a multiple of {step}{span}); "
        f"nearest valid: {' or '.join(map(str, nearest))}",
        field=field,
    )


def check_extra(value: Any) -> None:
    if not isinstance(value, dict):
        raise _fail("extra", f"must be a dict, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str) or not key:
            raise _fail("extra", f"keys must be non-empty strings, got {_shown(key)}")
        if callable(value[key]):
            raise _fail(
                f"extra[{_shown(key)}]", "must be a plain value, not a callable (use on_progress= for callbacks)"
            )


def check_image(field: str, value: Any, required: bool):
    """Decode-check an image field: the :class:`~abstractvision.media.InspectedImage` for it, or None."""
    if value is None:
        if required:
            raise _fail(field, "is required (image bytes or a file path)")
        return None
    from .media import inspected_image

    return inspected_image(value, field=field)


def check_angles(value: Any) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise _fail("angles", "must be a non-empty list of angle names, e.g. ['front', 'side']")
    for angle in value:
        check_text("angles", angle, required=True)


def validate_request(task: str, request: Any, caps: VisionBackendCapabilities) -> Any:
    """Check every field ``request`` has against generic rules and the backend's limits.

    Returns ``request`` with its image fields as :class:`~abstractvision.media.InspectedImage`: each
    input is decoded here, once, and backends read its size and mode from it instead of decoding again.
    """
    has = request.__dataclass_fields__
    check_text("prompt", getattr(request, "prompt", None), required=task in _PROMPT_REQUIRED)
    check_text("negative_prompt", getattr(request, "negative_prompt", None), required=False)
    if "width" in has:
        check_positive_int("width", request.width, caps.max_width)
        check_positive_int("height", request.height, caps.max_height)
    if "fps" in has:
        check_positive_int("fps", request.fps, caps.max_fps)
        check_positive_int("num_frames", request.num_frames, caps.max_frames)
    if "steps" in has:
        check_positive_int("steps", request.steps)
    if "guidance_scale" in has:
        check_number("guidance_scale", request.guidance_scale, minimum=0)
    check_seed("seed", request.seed, caps.max_seed)
    check_extra(request.extra)
    if task == "image_upscale":
        check_number("scale", request.scale, minimum=1, maximum=MAX_UPSCALE)
        if request.resolution is not None:
            if not isinstance(request.resolution, (tuple, list)) or len(request.resolution) != 2:
                raise _fail("resolution", "must be a (width, height) pair")
            # not capped by max_width/max_height: those bound what an engine generates, not what it upscales to
            check_positive_int("resolution", request.resolution[0])
            check_positive_int("resolution", request.resolution[1])
            if request.scale is not None:
                raise _fail("resolution", "give scale or resolution, not both")
    if "control_image" in has:
        check_number("control_strength", request.control_strength, minimum=0, maximum=2)
        if request.control_strength is not None and request.control_image is None:
            raise _fail("control_strength", "was given without a control_image")
    if "reference_image" in has:
        check_angles(request.angles)
    if "lora_adapters" in has:
        request = dataclasses.replace(request, lora_adapters=as_lora_adapters(request.lora_adapters))
    return _with_inspected_images(request, has)


def _with_inspected_images(request: Any, has: Any) -> Any:
    """Decode-check each image field (the last checks: the costly ones) and carry what was found."""
    images = {name: check_image(name, getattr(request, name), name == "image") for name in _IMAGE_FIELDS if name in has}
    images = {name: image for name, image in images.items() if image is not None}
    mask, image = images.get("mask"), images.get("image")
    if "scale" in has and image is not None:
        _check_upscale_target(image.info.width, image.info.height, request.scale, request.resolution)
    if mask is not None and (mask.info.width, mask.info.height) != (image.info.width, image.info.height):
        raise _fail(
            "mask",
            f"is {mask.info.width}x{mask.info.height} but the image is {image.info.width}x{image.info.height}; "
            "they must be the same size",
        )
    return dataclasses.replace(request, **images) if images else request


def upscale_size(
    width: int, height: int, scale: float | None, resolution: tuple[int, int] | None
) -> tuple[int, int] | None:
    """The exact size an upscale of a ``width`` x ``height`` image must come out at: ``resolution``,
    else the image times ``scale`` (rounded, at least 1 pixel); ``None`` when neither is given (the
    engine's own factor decides). Every backend resizes its engine's output to this, so one request
    gives one size on every engine."""
    if resolution is not None:
        return int(resolution[0]), int(resolution[1])
    if scale is None:
        return None
    return max(1, round(width * scale)), max(1, round(height * scale))


def _check_upscale_target(width: int, height: int, scale: Any, resolution: Any) -> None:
    """An upscale only enlarges, and its result must stay within the pixel limit every image meets."""
    from .media import MAX_INPUT_PIXELS

    target = upscale_size(width, height, scale, tuple(resolution) if resolution is not None else None)
    if target is None:
        return
    field = "resolution" if resolution is not None else "scale"
    if target[0] < width or target[1] < height:
        raise _fail(field, f"{target[0]}x{target[1]} is smaller than the image ({width}x{height}); upscaling enlarges")
    if target[0] * target[1] > MAX_INPUT_PIXELS:
        raise _fail(
            field,
            f"the result would be {target[0]}x{target[1]} = {target[0] * target[1]} pixels, over the limit of "
            f"{MAX_INPUT_PIXELS}; use a smaller scale or image",
        )


def gate_capabilities(
    task: str, request: Any, caps: VisionBackendCapabilities, backend_name: str, hint: str | None = None
) -> None:
    """Refuse tasks and options the backend says it cannot do, before calling it. ``hint``: how to
    enable the task (the backend's ``capability_hint``), added to the refusal."""
    if task not in caps.supported_tasks:
        supported = ", ".join(caps.supported_tasks) or "none"
        raise CapabilityNotSupportedError(
            f"the {backend_name} backend does not support {task} (it supports: {supported})"
            + (f"; {hint}" if hint else "")
        )
    if getattr(request, "mask", None) is not None and not caps.supports_mask:
        raise CapabilityNotSupportedError(f"the {backend_name} backend does not support masks (inpainting)")
    if getattr(request, "control_image", None) is not None and not caps.supports_control_image:
        raise CapabilityNotSupportedError(f"the {backend_name} backend does not support control images")
    if getattr(request, "lora_adapters", None) and not caps.supports_lora:
        raise CapabilityNotSupportedError(
            f"the {backend_name} backend does not support LoRA adapters (lora_adapters); "
            "use a local Diffusers or stable-diffusion.cpp backend, or an sd-server dialect"
        )


def plan_seeds(
    count: Any, seeds: Any, base_seed: int | None, max_seed: int = DEFAULT_MAX_SEED, draw: bool = True
) -> list[int | None]:
    """Per-item seeds of a batch: explicit ``seeds`` decide the count, else ``count`` items seeded
    ``base_seed, base_seed+1, ...`` (wrapping past ``max_seed`` to 0: reproducible), else ``count``
    distinct seeds drawn at random, so no item depends on the backend's own default seed (a server
    with a fixed default would make ``count`` identical pictures). ``draw=False`` (a backend that
    takes no seeds) leaves them to the backend. At most :data:`MAX_BATCH_ITEMS`.
    """
    check_positive_int("count", count, MAX_BATCH_ITEMS)
    check_seed("seed", base_seed, max_seed)
    if seeds is not None:
        if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
            raise _fail("seeds", "must be a non-empty list of integers")
        try:
            size = len(seeds)
        except OverflowError:  # range(10**400)
            size = MAX_BATCH_ITEMS + 1
        if not 1 <= size <= MAX_BATCH_ITEMS:
            raise _fail("seeds", f"must be a list of 1 to {MAX_BATCH_ITEMS} integers, got {size} items")
        for seed in seeds:
            check_seed("seeds", seed, max_seed)
        if count is not None and count not in (1, size):
            raise _fail("count", f"is {count} but {size} seeds were given; pass one or the other")
        return list(seeds)
    if count is None:
        count = 1
    if base_seed is not None:
        return [(base_seed + i) % (max_seed + 1) for i in range(count)]
    if not draw or count == 1:
        return [None] * count  # one item: the backend draws (and records) its seed as for a single call
    return secrets.SystemRandom().sample(range(max_seed + 1), count)


__all__ = [
    "MAX_BATCH_ITEMS",
    "MAX_INT",
    "MAX_PROMPT_CHARS",
    "MAX_UPSCALE",
    "check_c_text",
    "check_seed",
    "check_size_step",
    "gate_capabilities",
    "plan_seeds",
    "random_seed",
    "upscale_size",
    "validate_request",
]
