"""One stable-diffusion.cpp run, described once for both engines (sd-cli and the Python bindings).

Why a separate description: the two modes must make the *same* image from the same request, so
defaults, size rules and the handling of ``extra`` are decided here, once, and each mode only
translates an :class:`SdcppJob` into its own form (argv or keyword arguments).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidRequestError
from ..validation import check_c_text, check_size_step
from ._sdcpp_lora import SdcppLora

#: (config field, sd-cli flag, bindings keyword) of every model file sd.cpp can take.
MODEL_FILES: tuple[tuple[str, str, str], ...] = (
    ("model", "-m", "model_path"),
    ("diffusion_model", "--diffusion-model", "diffusion_model_path"),
    ("vae", "--vae", "vae_path"),
    ("llm", "--llm", "llm_path"),
    ("llm_vision", "--llm_vision", "llm_vision_path"),
    ("clip_l", "--clip_l", "clip_l_path"),
    ("clip_g", "--clip_g", "clip_g_path"),
    ("t5xxl", "--t5xxl", "t5xxl_path"),
)

MIN_SIZE = 64
MAX_SIZE = 4096
DEFAULT_STEPS = 20
DEFAULT_STRENGTH = 0.75

#: Request fields the backend sets itself; the same names in ``extra`` would fight them.
RESERVED_EXTRA = frozenset(
    {"prompt", "negative_prompt", "width", "height", "steps", "seed", "cfg_scale", "guidance_scale", "output"}
    | {"init_img", "init_image", "mask", "mask_image", "model", "o", "p", "n", "m", "s", "w", "h", "W", "H"}
    | {"lora_model_dir", "lora_adapters", "lora"}  # adapters come from lora_adapters, in a folder made per call
)
_PLAIN = (str, int, float, bool)


@dataclass(frozen=True)
class SdcppModelLayout:
    """Defaults and size rules that differ between single-file checkpoints and component models.

    Single-file SD 1.x/2.x/XL checkpoints work on an 8x smaller latent (sizes multiple of 8, CFG 7).
    Component models (FLUX, Qwen-Image, SD3: ``diffusion_model`` + VAE + text encoders) patchify
    that latent 2x2 (sizes multiple of 16) and are guidance-distilled or tuned for low CFG.
    """

    multiple_of: int
    default_size: int
    default_cfg: float


SINGLE_FILE = SdcppModelLayout(multiple_of=8, default_size=512, default_cfg=7.0)
COMPONENTS = SdcppModelLayout(multiple_of=16, default_size=1024, default_cfg=1.0)


@dataclass(frozen=True)
class SdcppJob:
    """Everything one generation needs, with every default already decided (so it is reproducible)."""

    task: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    seed: int
    cfg_scale: float
    strength: float | None = None
    init_image: bytes | None = field(default=None, repr=False)
    mask: bytes | None = field(default=None, repr=False)
    options: dict[str, str | int | float | bool] = field(default_factory=dict)
    #: The call's adapters, resolved to files (each engine turns them into its own tags and folder).
    loras: tuple[SdcppLora, ...] = ()

    @property
    def sampler(self) -> str:
        return str(self.options.get("sampling_method", "default"))


def text_fields(job: SdcppJob) -> dict[str, str]:
    """The job's free text, by the field name an error should give: prompts and string options."""
    fields = {"prompt": job.prompt, "negative_prompt": job.negative_prompt}
    fields.update({f"extra[{name!r}]": value for name, value in job.options.items() if isinstance(value, str)})
    return fields


def check_text(fields: Mapping[str, str]) -> None:
    """Refuse text neither engine can take, naming the field (also for a backend used without a
    manager, and for string options, which the manager does not read)."""
    for name, value in fields.items():
        check_c_text(name, value)


def check_size(name: str, value: int, layout: SdcppModelLayout, field_name: str | None = None) -> None:
    """Reject a size sd.cpp cannot take for this model layout, offering the nearest sizes it can."""
    subject = "this stable-diffusion.cpp model"
    check_size_step(field_name or name, value, layout.multiple_of, MIN_SIZE, MAX_SIZE, label=name, subject=subject)


def plain_options(extra: dict[str, Any]) -> dict[str, str | int | float | bool]:
    """The ``extra`` entries that may become engine options.

    Only plain values (str, int, float, bool) pass: callables, containers and ``None`` never
    reach a command line, and keys starting with ``_`` are internal to the caller. Keys the
    backend sets itself are refused so that ``extra`` cannot silently override a request field.
    """
    options: dict[str, str | int | float | bool] = {}
    for key, value in extra.items():
        if not isinstance(key, str) or key.startswith("_") or not isinstance(value, _PLAIN):
            continue
        name = key.lstrip("-").replace("-", "_")
        if name in RESERVED_EXTRA:
            raise InvalidRequestError(
                f"extra[{key!r}]: set this with the request's own field, not through extra", field=f"extra[{key!r}]"
            )
        options[name] = value
    return options


def check_strength(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidRequestError(
            f"extra['strength']: must be a number from 0 to 1 (how much of the image to repaint), got {value!r}",
            field="extra['strength']",
        )
    return float(value)


__all__ = [
    "COMPONENTS",
    "DEFAULT_STEPS",
    "DEFAULT_STRENGTH",
    "MAX_SIZE",
    "MIN_SIZE",
    "MODEL_FILES",
    "SINGLE_FILE",
    "SdcppJob",
    "SdcppModelLayout",
    "check_size",
    "check_strength",
    "check_text",
    "plain_options",
    "text_fields",
]
