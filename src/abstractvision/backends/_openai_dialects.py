"""Server dialects: how the portable controls and edits travel to one kind of OpenAI-shaped server.

Why: "OpenAI-compatible" servers agree on ``/images/generations`` and ``data[]`` answers, and on
little else. stable-diffusion.cpp's sd-server ignores top-level ``seed``/``steps`` and reads them
only from a one-line ``<sd_cpp_extra_args>{json}</sd_cpp_extra_args>`` block in the prompt; LocalAI
wants ``step`` and the negative prompt after ``|``; vLLM-Omni and SGLang take diffusers-style
top-level fields. A dialect turns the *generic* shape (:func:`._openai_shapes.shape_fields` for a
local family: the controls as top-level extension fields) into what one server reads, and lists
the controls it cannot carry. One small class per dialect, in :data:`DIALECTS`; docs/backends/openai.md
has the table and the source of every fact.

``auto`` (:func:`detect`) decides once per backend from what the server shows: OpenAI's models or
host, sd-server's fixed ``sd-cpp-local`` model id or its native ``/sdcpp/v1/capabilities``,
``abstractvision serve``'s models (``owned_by`` ``abstractvision:<backend>``), LocalAI's ``/version``;
anything else is ``generic``.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..errors import InvalidProviderResponseError, InvalidRequestError, ProviderError
from ._http import HttpCall, HttpResponse

#: The portable image controls, as the generic shape names them.
PORTABLE = ("negative_prompt", "seed", "steps", "guidance_scale")

#: ``extra`` keys a dialect may carry natively (sampler and scheduler names of the engine).
SAMPLER_KEYS = ("sampler", "scheduler")


@dataclass(frozen=True)
class Dialect:
    """The generic shape, unchanged: every portable control as a top-level field (``width``,
    ``height`` and ``size`` together). What abstractvision sent before dialects existed."""

    name: ClassVar[str] = "generic"
    #: The portable controls this dialect sends; the others are dropped (or refused with strict_params).
    carries: ClassVar[frozenset[str]] = frozenset(PORTABLE)
    #: The multipart field of the edited image, when the dialect fixes it (else the model family's).
    image_field: ClassVar[str | None] = None
    #: Whether ``width``/``height`` go as fields next to ``size`` (else ``size`` alone says the size).
    sends_dimensions: ClassVar[bool] = True

    def wire(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` (generic shape; dropped controls, and width/height where not sent, already
        removed) as this server reads them."""
        return fields


class OpenAIDialect(Dialect):
    """OpenAI's published shape: no local controls (the model family also checks sizes and values)."""

    name = "openai"
    carries = frozenset()
    sends_dimensions = False


class SdcppDialect(Dialect):
    """stable-diffusion.cpp's sd-server: ``size`` only, the rest in one ``<sd_cpp_extra_args>`` line.

    Keys (sd-server 0.4.5, ``SDGenerationParams::from_json_str``): ``seed`` (integer), ``steps``,
    ``cfg_scale``, ``negative_prompt``, ``sample_method``, ``scheduler``. The block must stay on one
    line (its regex does not cross newlines): ``json.dumps`` without indentation guarantees it.
    """

    name = "sdcpp"
    image_field = "image[]"
    sends_dimensions = False
    _KEYS: ClassVar[dict[str, str]] = {
        "seed": "seed",
        "steps": "steps",
        "guidance_scale": "cfg_scale",
        "negative_prompt": "negative_prompt",
        "sampler": "sample_method",
        "scheduler": "scheduler",
    }

    def wire(self, fields: dict[str, Any]) -> dict[str, Any]:
        block = {key: fields.pop(name) for name, key in self._KEYS.items() if fields.get(name) is not None}
        if block and fields.get("prompt") is not None:
            text = json.dumps(block, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            fields["prompt"] = f"{fields['prompt']} <sd_cpp_extra_args>{text}</sd_cpp_extra_args>"
        return fields


class LocalAIDialect(Dialect):
    """LocalAI: ``step`` for the steps, the negative prompt after ``|`` in the prompt, ``seed`` as is;
    no guidance field. Its answers may be URLs (fetched like any result URL)."""

    name = "localai"
    carries = frozenset({"negative_prompt", "seed", "steps"})
    sends_dimensions = False

    def wire(self, fields: dict[str, Any]) -> dict[str, Any]:
        if fields.get("steps") is not None:
            fields["step"] = fields.pop("steps")
        negative = fields.pop("negative_prompt", None)
        if negative and fields.get("prompt") is not None:
            fields["prompt"] = f"{fields['prompt']}|{negative}"
        return fields


class DiffusersServerDialect(Dialect):
    """vLLM-Omni's and SGLang-Diffusion's image APIs: diffusers' names as top-level fields, ``size`` as WxH."""

    name = "vllm-omni"
    sends_dimensions = False

    def wire(self, fields: dict[str, Any]) -> dict[str, Any]:
        if fields.get("steps") is not None:
            fields["num_inference_steps"] = fields.pop("steps")
        return fields


class SGLangDialect(DiffusersServerDialect):
    name = "sglang"


class AbstractVisionDialect(Dialect):
    """``abstractvision serve``: the portable controls as top-level extension fields, which it hands
    to its own backend as they are; ``size`` says the size; other ``extra`` keys reach that backend's
    ``extra``. Recognised by its ``/models`` entries (:data:`ABSTRACTVISION_OWNER`)."""

    name = "abstractvision"
    sends_dimensions = False


#: How ``abstractvision serve`` signs its ``/models`` entries: ``owned_by`` is this prefix and its backend's name.
ABSTRACTVISION_OWNER = "abstractvision:"


DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (
        Dialect(),
        OpenAIDialect(),
        SdcppDialect(),
        LocalAIDialect(),
        DiffusersServerDialect(),
        SGLangDialect(),
        AbstractVisionDialect(),
    )
}
DIALECT_NAMES = ("auto", *DIALECTS)


def translate(
    dialect: Dialect, fields: dict[str, Any], *, strict: bool, model: str
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(the fields as recorded, the fields as sent, the controls dropped). Raises with ``strict``."""
    dropped = [name for name in PORTABLE if fields.get(name) is not None and name not in dialect.carries]
    if dropped and strict:
        carried = ", ".join(sorted(dialect.carries)) or "none of them"
        raise InvalidRequestError(
            f"{dropped[0]}: {model} ({dialect.name} dialect) does not take {dropped[0]}; it takes {carried}",
            field=dropped[0],
        )
    recorded = {name: value for name, value in fields.items() if name not in dropped}
    sent = dict(recorded)
    if not dialect.sends_dimensions:
        sent.pop("width", None), sent.pop("height", None)
    return recorded, dialect.wire(sent), dropped


# ---- sd-server's A1111 API: img2img (the edit that uses the image on SD 1.x) and LoRA -----------
#: Generic field -> ``/sdapi/v1/txt2img|img2img`` field (sd-server 0.4.5 main.cpp:773-1072).
_SDAPI_KEYS = {
    "guidance_scale": "cfg_scale",
    "sampler": "sampler_name",
    "strength": "denoising_strength",
}
#: Fields of the generic shape that img2img does not read (its size comes from width/height).
_SDAPI_DROPPED = ("model", "response_format", "size", "n")
SDAPI_IMG2IMG = "/sdapi/v1/img2img"
SDAPI_TXT2IMG = "/sdapi/v1/txt2img"
#: img2img requires ``steps`` (1..150); sd-server's own default when a request gives none.
SDAPI_DEFAULT_STEPS = 20


def sdapi_img2img(fields: dict[str, Any], image_b64: str, mask_b64: str | None, size: tuple[int, int] | None) -> dict:
    """The JSON body of ``POST /sdapi/v1/img2img`` for an edit: image, mask, strength and the controls;
    the output size is ``extra={"size": "WxH"}`` when given, else ``size`` (the input PNG's).

    Why not ``/v1/images/edits``: sd-server 0.4.5 passes ``image[]`` there as *reference* images, which
    only edit models read; for SD 1.x the image, the mask and the strength change nothing (measured).
    """
    body = sdapi_txt2img(fields, size)
    body["init_images"] = [image_b64]
    if mask_b64 is not None:
        body["mask"] = mask_b64
    return body


def sdapi_txt2img(fields: dict[str, Any], size: tuple[int, int] | None = None) -> dict:
    """The JSON body of ``POST /sdapi/v1/txt2img`` (what a generation with LoRA adapters needs: sd-server's
    ``/v1`` takes none), and the part img2img shares: the controls under A1111's names, ``steps``
    (required there), ``batch_size`` for ``n``, the size from ``size`` ("WxH") or the ``size`` pair."""
    body = {_SDAPI_KEYS.get(name, name): value for name, value in fields.items() if name not in _SDAPI_DROPPED}
    body.setdefault("steps", SDAPI_DEFAULT_STEPS)
    if fields.get("n"):
        body["batch_size"] = fields["n"]
    width, _, height = str(fields.get("size") or "").partition("x")
    if width.isdigit() and height.isdigit():  # an explicit extra={"size": "WxH"} wins over the input's size
        body["width"], body["height"] = int(width), int(height)
    elif size is not None:
        body["width"], body["height"] = size
    return body


def sdapi_payload(payload: Any, source: str) -> dict[str, Any]:
    """An img2img answer (``{"images": [b64, ...]}``) as a ``data[]`` answer."""
    images = payload.get("images") if isinstance(payload, dict) else None
    if not isinstance(images, list) or not images:
        raise InvalidProviderResponseError(f"{source} answered without an images list: {str(payload)[:300]!r}")
    return {"data": [{"b64_json": image} for image in images]}


# ---- what the server shows ---------------------------------------------------------------------
@dataclass(frozen=True)
class ServerProfile:
    """What one backend learned about its server, once: the dialect, and for sd-server which of its
    other APIs answer (``sdapi``: A1111's img2img, the only SD 1.x edit that uses the image in 0.4.5;
    ``native``: the ``/sdcpp/v1`` job API of newer sd-servers)."""

    dialect: Dialect
    sdapi: bool = False
    native: bool = False

    def route(self, task: str, lora: bool = False) -> str:
        """Where an image task goes: ``native`` (sd-server's job API: progress and a real cancel),
        ``sdapi`` (its img2img: the edit that uses the image; and txt2img for a call with LoRA
        adapters, which ``/v1`` does not take), else ``openai`` (the ``/v1`` endpoints)."""
        if self.dialect.name != "sdcpp":
            return "openai"
        if self.native:
            return "native"
        return "sdapi" if self.sdapi and (lora or task == "image_to_image") else "openai"


def server_root(base_url: str) -> str:
    """The server's root for its non-``/v1`` APIs: ``base_url`` without a trailing ``/v1``."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    path = path[: -len("/v1")] if path.endswith("/v1") else ""
    return f"{parts.scheme}://{parts.netloc}{path}"


Probe = Generator[HttpCall, HttpResponse, Any]


def _answer(url: str) -> Probe:
    """The JSON a GET of ``url`` answers, or ``None`` when it fails with an HTTP status or no JSON."""
    try:
        response = yield HttpCall("GET", url)
        return response.json()
    except (ProviderError, InvalidProviderResponseError):
        return None


def detect(setting: str, base_url: str, models_url: str, openai: bool) -> Probe:
    """The :class:`ServerProfile` for the ``dialect`` setting; ``auto`` looks at the server: its
    ``/models`` (sd-server lists only ``sd-cpp-local``; ``abstractvision serve`` signs its entries'
    ``owned_by``), then LocalAI's ``/version``. For sd-server, one GET each tells whether its native
    job API and its A1111 API answer."""
    root = server_root(base_url)
    if setting == "auto" and openai:
        return ServerProfile(DIALECTS["openai"])
    if setting not in ("auto", "sdcpp"):
        return ServerProfile(DIALECTS[setting])
    if setting == "auto":
        models = yield from _answer(models_url)
        listed = models.get("data") if isinstance(models, dict) else None
        entries = [item for item in listed if isinstance(item, dict)] if isinstance(listed, list) else []
        if any(str(item.get("owned_by", "")).startswith(ABSTRACTVISION_OWNER) for item in entries):
            return ServerProfile(DIALECTS["abstractvision"])
        if "sd-cpp-local" not in {item.get("id") for item in entries}:
            version = yield from _answer(f"{root}/version")
            is_localai = isinstance(version, dict) and "version" in version
            return ServerProfile(DIALECTS["localai" if is_localai else "generic"])
    native = isinstance((yield from _answer(f"{root}/sdcpp/v1/capabilities")), dict)
    sdapi = isinstance((yield from _answer(f"{root}/sdapi/v1/options")), dict)
    return ServerProfile(DIALECTS["sdcpp"], sdapi=sdapi, native=native)


__all__ = [
    "ABSTRACTVISION_OWNER",
    "DIALECTS",
    "DIALECT_NAMES",
    "PORTABLE",
    "SDAPI_IMG2IMG",
    "SDAPI_TXT2IMG",
    "Dialect",
    "ServerProfile",
    "detect",
    "sdapi_img2img",
    "sdapi_payload",
    "sdapi_txt2img",
    "server_root",
    "translate",
]
