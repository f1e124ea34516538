"""Request shaping per model family: what each kind of endpoint accepts, checked before sending.

Why: local OpenAI-compatible servers (LocalAI, stable-diffusion.cpp's server, gateways) take the
local extension fields (``negative_prompt``, ``width``/``height``, ``seed``, ``steps``,
``guidance_scale``), while OpenAI's own Images/Videos API rejects them and accepts only its
published, per-model values. The portable controls are the same call on every engine, so OpenAI's
families drop them (and map ``width``/``height`` to the nearest published size) and say so, unless
``strict_params`` asks for a refusal. An explicit provider parameter (``extra``) with a value the
provider rejects costs a round trip (and for a paid service, a confusing 400): it is a caller
mistake, reported before sending with the list of valid values.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import CapabilityNotSupportedError, InvalidRequestError
from ..media import extension_for, sniff_mime_type
from ..types import IMAGE_TASKS, VIDEO_TASKS

#: Hosts that get OpenAI's narrow shape even for a model id this module does not know.
OPENAI_HOSTS = ("api.openai.com",)

#: Every optional parameter of OpenAI's Images API; a family accepts a subset of them.
OPENAI_IMAGE_PARAMS = frozenset(
    {
        "background",
        "input_fidelity",
        "moderation",
        "n",
        "output_compression",
        "output_format",
        "partial_images",
        "quality",
        "response_format",
        "size",
        "stream",
        "style",
        "user",
    }
)

#: Portable generation controls: every engine takes them, OpenAI's narrow shapes do not. A provider that cannot
#: take one drops it (the result lists it in ``metadata["ignored_params"]``), unless ``strict_params`` is set.
LOCAL_FIELDS = ("negative_prompt", "seed", "steps", "guidance_scale", "fps", "num_frames")

#: ``extra`` key carrying additional reference images for multi-image edits (bytes each).
REFERENCE_IMAGES_KEY = "reference_images"


@dataclass(frozen=True)
class EndpointFamily:
    """One family of models behind OpenAI-shaped endpoints: which model ids belong to it, the tasks
    it does, and what its requests may hold. ``openai`` families get OpenAI's narrow published shape.

    The one place that knows OpenAI's model families: request shaping reads it, and so does the
    ``/models`` catalog (:mod:`._openai_catalog`) to say what each listed model can do.
    """

    name: str
    openai: bool = False
    prefixes: tuple[str, ...] = ()
    tasks: tuple[str, ...] = IMAGE_TASKS
    sizes: tuple[str, ...] = ()
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    int_ranges: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    params: frozenset[str] = OPENAI_IMAGE_PARAMS
    max_n: int | None = None
    response_format: bool = True
    image_field: str = "image"
    max_edit_images: int = 1
    sizes_by_model: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def edits(self) -> bool:
        return "image_to_image" in self.tasks


LOCAL = EndpointFamily("local")
OPENAI_OTHER = EndpointFamily("openai", openai=True)
GPT_IMAGE = EndpointFamily(
    "gpt-image",
    openai=True,
    prefixes=("gpt-image", "chatgpt-image"),
    sizes=("auto", "1024x1024", "1536x1024", "1024x1536"),
    choices={
        "quality": ("low", "medium", "high", "auto"),
        "background": ("transparent", "opaque", "auto"),
        "output_format": ("png", "jpeg", "webp"),
        "moderation": ("low", "auto"),
        "input_fidelity": ("high", "low"),
        "stream": (True, False),
    },
    int_ranges={"output_compression": (0, 100), "partial_images": (0, 3), "n": (1, 10)},
    params=OPENAI_IMAGE_PARAMS - {"response_format", "style"},
    max_n=10,
    response_format=False,
    image_field="image[]",
    max_edit_images=16,
)
DALL_E_3 = EndpointFamily(
    "dall-e-3",
    openai=True,
    prefixes=("dall-e-3",),
    tasks=("text_to_image",),
    sizes=("1024x1024", "1792x1024", "1024x1792"),
    choices={"quality": ("standard", "hd"), "style": ("vivid", "natural"), "response_format": ("url", "b64_json")},
    int_ranges={"n": (1, 1)},
    params=frozenset({"n", "quality", "response_format", "size", "style", "user"}),
    max_n=1,
)
DALL_E_2 = EndpointFamily(
    "dall-e-2",
    openai=True,
    prefixes=("dall-e-2",),
    sizes=("256x256", "512x512", "1024x1024"),
    choices={"response_format": ("url", "b64_json")},
    int_ranges={"n": (1, 10)},
    params=frozenset({"n", "response_format", "size", "user"}),
    max_n=10,
)
SORA = EndpointFamily(
    "sora",
    openai=True,
    prefixes=("sora",),
    tasks=VIDEO_TASKS,
    sizes=("720x1280", "1280x720", "1024x1792", "1792x1024"),
    sizes_by_model={"sora-2": ("720x1280", "1280x720")},
    choices={"seconds": ("4", "8", "12")},
    params=frozenset({"seconds", "size"}),
    response_format=False,
)


def is_openai_host(base_url: str) -> bool:
    return (urlsplit(base_url).hostname or "").lower() in OPENAI_HOSTS


#: The families known by model id, wherever they are served.
KNOWN_FAMILIES = (GPT_IMAGE, DALL_E_3, DALL_E_2, SORA)


def known_family(model_id: str | None) -> EndpointFamily | None:
    """The known family whose id prefix ``model_id`` starts with, if any."""
    model = (model_id or "").lower()
    return next((family for family in KNOWN_FAMILIES if model and model.startswith(family.prefixes)), None)


def family_for(model_id: str | None, base_url: str) -> EndpointFamily:
    """The family of ``model_id``: known OpenAI models by id anywhere, else by host."""
    family = known_family(model_id)
    if family is not None:
        return family
    if is_openai_host(base_url):
        return DALL_E_2 if not model_id else OPENAI_OTHER  # OpenAI's default image model is dall-e-2
    return LOCAL


def _reject(name: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"{name}: {message}", field=name)


def _check_value(family: EndpointFamily, model: str, name: str, value: Any) -> None:
    if name in family.choices and value not in family.choices[name]:
        valid = ", ".join(map(str, family.choices[name]))
        raise _reject(name, f"{value!r} is not valid for {model}; valid values: {valid}")
    if name in family.int_ranges:
        low, high = family.int_ranges[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _reject(name, f"{value!r} is not valid for {model}; use an integer in {low}..{high}")


def _check_size(family: EndpointFamily, model: str, size: Any, field_name: str) -> None:
    sizes = family.sizes_by_model.get(model, family.sizes)
    if sizes and size not in sizes:
        raise _reject(field_name, f"{size!r} is not a size {model} accepts; valid sizes: {', '.join(sizes)}")


def _size_from(request: Any) -> str | None:
    width, height = getattr(request, "width", None), getattr(request, "height", None)
    if width is None and height is None:
        return None
    if width is None or height is None:
        raise _reject("width" if width is None else "height", "give both width and height (the size is WxH)")
    return f"{width}x{height}"


def nearest_size(sizes: tuple[str, ...], width: int, height: int) -> str:
    """The listed ``WxH`` closest to ``width`` x ``height``: the nearest aspect ratio first, then the nearest area
    (``auto`` is not a size). Why: a portable 1000x1000 on gpt-image-1 means its 1024x1024, not an error."""
    wanted_ratio, wanted_area = max(width, 1) / max(height, 1), max(width, 1) * max(height, 1)

    def distance(size: str) -> tuple[float, float]:
        w, h = (int(part) for part in size.split("x"))
        return abs(math.log(w / h / wanted_ratio)), abs(math.log(w * h / wanted_area))

    return min((size for size in sizes if size != "auto"), key=distance)


@dataclass
class Shaped:
    """A request's fields as the family takes them, and the portable controls dropped on the way."""

    fields: dict[str, Any]
    ignored: list[str] = field(default_factory=list)
    requested_size: str | None = None


def shape_fields(
    family: EndpointFamily, request: Any, model_id: str | None, *, n: int | None = None, strict: bool = False
) -> Shaped:
    """The request's parameters as this family takes them (JSON types), validated; raises before sending.

    Local families get the portable controls as top-level extension fields (the ``generic`` shape that
    :mod:`._openai_dialects` rewrites per server). OpenAI's families drop them and map ``width``/``height`` to the
    nearest published size; ``strict`` refuses both instead. Explicit provider parameters (``extra``) are checked
    against the family's published values either way.
    """
    model = model_id or family.name
    extra = {k: v for k, v in request.extra.items() if k != REFERENCE_IMAGES_KEY}
    if "n" in extra:
        raise _reject("n", "ask for several images with the *_batch methods (count=N), which use n when they can")
    shaped = Shaped({})
    fields = shaped.fields
    if getattr(request, "prompt", None) is not None:
        fields["prompt"] = request.prompt
    if model_id:
        fields["model"] = model_id
    size = _size_from(request)
    if not family.openai:
        for name in LOCAL_FIELDS:
            if getattr(request, name, None) is not None:
                fields[name] = getattr(request, name)
        if size is not None:
            fields.update(width=request.width, height=request.height, size=size)
    else:
        for name in LOCAL_FIELDS:
            if getattr(request, name, None) is None:
                continue
            if strict:
                accepted = ", ".join(sorted(family.params - {"n", "stream"})) or "none"
                raise _reject(name, f"{model} (OpenAI API) does not take {name}; its optional parameters: {accepted}")
            shaped.ignored.append(name)
        if size is not None:
            sizes = family.sizes_by_model.get(model, family.sizes)
            if strict or not sizes:
                _check_size(family, model, size, "width")
            elif size not in sizes:
                shaped.requested_size, size = size, nearest_size(sizes, request.width, request.height)
            fields["size"] = size
        for name, value in extra.items():
            if name in OPENAI_IMAGE_PARAMS | SORA.params and name not in family.params:
                accepted = ", ".join(sorted(family.params)) or "none"
                raise _reject(name, f"{model} does not take {name}; it accepts: {accepted}")
            if name == "size":
                _check_size(family, model, value, "size")
            else:
                _check_value(family, model, name, value)
    if n is not None and n != 1:
        fields["n"] = n
    if family.response_format and "response_format" not in extra:
        fields["response_format"] = "b64_json"  # bytes now, not a URL that expires
    fields.update(extra)
    if fields.get("partial_images"):
        fields.setdefault("stream", True)
    return shaped


def file_part(name: str, data: bytes, stem: str) -> tuple[str, tuple[str, bytes, str]]:
    """A multipart file part with the real extension and content type of ``data``."""
    mime = sniff_mime_type(data) or "application/octet-stream"
    return name, (f"{stem}{extension_for(mime)}", data, mime)


_SENDABLE = "use strings, finite numbers, booleans, lists and dicts"


def _encode_json(value: Any) -> bytes:
    """Strict JSON as UTF-8: no NaN or infinity, no arbitrary objects, no lone surrogates."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _unsendable(fields: Mapping[str, Any], error: Exception) -> InvalidRequestError:
    """The error naming the first field of ``fields`` that cannot be encoded (``error`` if none alone fails)."""
    for name, value in fields.items():
        try:
            _encode_json({name: value})
        except (TypeError, ValueError) as exc:
            return _reject(name, f"{str(value)[:60]!r} cannot be sent ({exc}); {_SENDABLE}")
    return InvalidRequestError(f"the request cannot be sent as JSON ({error}); {_SENDABLE}")


def json_body(fields: Mapping[str, Any]) -> bytes:
    """``fields`` as a JSON request body, encoded here so that a value no server could read is
    refused before anything is sent, naming its field (httpx would fail mid-request)."""
    try:
        return _encode_json(fields)
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise _unsendable(fields, exc) from None


def form_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    """JSON-typed fields as multipart form values (booleans lower-case, containers as JSON).

    Checked like :func:`json_body`: a value that is not JSON-typed, a NaN or a lone surrogate is refused.
    """
    out = {}
    try:
        for name, value in fields.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, (dict, list, tuple, float)):
                text = _encode_json(value).decode("utf-8")
            elif isinstance(value, (str, int)) or value is None:
                text = str(value)
            else:
                raise TypeError(f"{type(value).__name__} is not JSON-typed")
            for part in (name, text):
                part.encode("utf-8")  # a lone surrogate fails here, not halfway through sending
            out[name] = text
    except (TypeError, ValueError) as exc:
        raise _unsendable(fields, exc) from None
    return out


def edit_files(
    family: EndpointFamily, request: Any, model_id: str | None, image_field: str | None = None
) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The image (+ reference images, + mask) parts of an edit; ``image_field`` overrides the family's."""
    model = model_id or family.name
    if not family.edits:
        raise CapabilityNotSupportedError(f"{model} cannot edit images; use gpt-image-1 or dall-e-2 for edits")
    references = request.extra.get(REFERENCE_IMAGES_KEY) or []
    if not isinstance(references, (list, tuple)) or not all(isinstance(r, (bytes, bytearray)) for r in references):
        raise _reject(REFERENCE_IMAGES_KEY, "must be a list of image bytes")
    if references and 1 + len(references) > family.max_edit_images:
        raise _reject(
            REFERENCE_IMAGES_KEY,
            f"{model} takes at most {family.max_edit_images} image(s) per edit; use a GPT image model for several",
        )
    name = image_field or family.image_field
    files = [file_part(name, request.image, "image")]
    files += [file_part(name, bytes(ref), f"reference-{i}") for i, ref in enumerate(references, 1)]
    if request.mask is not None:
        files.append(file_part("mask", request.mask, "mask"))
    return files


def video_fields(family: EndpointFamily, request: Any, model_id: str | None, *, strict: bool = False) -> Shaped:
    """Video request parameters: OpenAI's ``seconds``/``size`` for Sora, local fields otherwise."""
    seconds = request.extra.get("seconds")
    if family is SORA and isinstance(seconds, int) and not isinstance(seconds, bool):
        request = dataclasses.replace(request, extra={**request.extra, "seconds": str(seconds)})  # OpenAI wants "4"
    return shape_fields(family, request, model_id, strict=strict)


def image_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


__all__ = [
    "DALL_E_2",
    "DALL_E_3",
    "EndpointFamily",
    "GPT_IMAGE",
    "KNOWN_FAMILIES",
    "LOCAL",
    "OPENAI_OTHER",
    "REFERENCE_IMAGES_KEY",
    "SORA",
    "Shaped",
    "edit_files",
    "family_for",
    "file_part",
    "known_family",
    "nearest_size",
    "form_fields",
    "image_b64",
    "is_openai_host",
    "json_body",
    "shape_fields",
    "video_fields",
]
