"""The contract's data: requests, results, capabilities, progress events.

Requests are frozen so that a backend's ``normalize_*`` hook returns a *new* request
(``dataclasses.replace``) instead of mutating the caller's; ``extra`` carries provider-specific
parameters with their JSON types. Image inputs are raw encoded bytes (PNG/JPEG/WEBP/...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Task = Literal["text_to_image", "image_to_image", "text_to_video", "image_to_video", "multi_view_image"]

#: The five task names, in the order the docs present them.
TASKS: tuple[str, ...] = (
    "text_to_image",
    "image_to_image",
    "text_to_video",
    "image_to_video",
    "multi_view_image",
)

#: The tasks that make still images (one Images endpoint family, one local image pipeline).
IMAGE_TASKS: tuple[str, ...] = ("text_to_image", "image_to_image")

#: The tasks that make videos.
VIDEO_TASKS: tuple[str, ...] = ("text_to_video", "image_to_video")

DEFAULT_ANGLES: tuple[str, ...] = ("front", "three_quarter", "side", "back")

#: Seeds every engine keeps distinct (an unsigned 32-bit integer): the range a backend accepts
#: unless its capabilities declare its engine's own (``VisionBackendCapabilities.max_seed``).
DEFAULT_MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class LoRAAdapterSpec:
    """One LoRA adapter applied to one call: a style or subject in a few MB on top of the base model.

    ``source``: a local file or folder, a Hugging Face repo id (Diffusers), or an adapter name from
    :meth:`~abstractvision.VisionManager.list_provider_adapters`. ``scale``: its strength (0: no
    effect; negative values invert it where the engine allows). ``weight_name`` and ``subfolder``
    pick the file inside a folder or repo; ``adapter_name`` names it for the engine (derived from the
    source when ``None``). Adapters apply to the call that asks for them and to no other.
    """

    source: str
    scale: float = 1.0
    weight_name: str | None = None
    subfolder: str | None = None
    adapter_name: str | None = None


@dataclass(frozen=True)
class ImageGenerationRequest:
    prompt: str
    negative_prompt: str | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    control_image: bytes | None = None
    control_strength: float | None = None
    lora_adapters: tuple[LoRAAdapterSpec, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageEditRequest:
    prompt: str
    image: bytes
    mask: bytes | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    lora_adapters: tuple[LoRAAdapterSpec, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VideoGenerationRequest:
    prompt: str
    negative_prompt: str | None = None
    width: int | None = None
    height: int | None = None
    fps: int | None = None
    num_frames: int | None = None
    seed: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageToVideoRequest:
    image: bytes
    prompt: str | None = None
    negative_prompt: str | None = None
    width: int | None = None
    height: int | None = None
    fps: int | None = None
    num_frames: int | None = None
    seed: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MultiAngleRequest:
    prompt: str
    reference_image: bytes | None = None
    angles: tuple[str, ...] = DEFAULT_ANGLES
    negative_prompt: str | None = None
    seed: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageUpscaleRequest:
    """Upscale ``image`` by ``scale`` or to ``resolution`` (``(width, height)``); neither: the engine's own factor.

    ``prompt``, ``negative_prompt``, ``steps`` and ``guidance_scale`` steer prompt-guided upscalers
    (Diffusers' ``StableDiffusionUpscalePipeline``); engines without a prompt (ESRGAN) ignore them.
    """

    image: bytes
    scale: float | None = None
    resolution: tuple[int, int] | None = None
    seed: int | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GeneratedAsset:
    """One generated image or video: encoded bytes plus how it was made.

    ``metadata`` is provenance: backend, model, task, the seed actually used, steps, guidance,
    size, timings and provider extras. It never contains credentials.
    """

    media_type: Literal["image", "video"]
    data: bytes
    mime_type: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # bytes would flood logs and tracebacks
        return (
            f"GeneratedAsset(media_type={self.media_type!r}, mime_type={self.mime_type!r}, "
            f"size_bytes={len(self.data)}, metadata={self.metadata!r})"
        )


@dataclass(frozen=True)
class VisionBackendCapabilities:
    """What a backend can do, stated honestly; the manager gates requests on it.

    ``None`` limits mean "no limit known to the backend". ``max_seed``: the largest seed the
    engine takes without wrapping it onto another (seeds run from 0); a request above it is refused.
    ``supports_seed``: the engine takes a seed; the manager draws distinct seeds for a batch only
    then (an engine without seeds, such as OpenAI's image models, makes its batch its own way).
    ``cancels_running``: a cancel stops a run that has started (not only one still waiting), so a
    server can promise it. ``previews``: runs report partial images as ``preview`` progress events.
    ``supports_lora``: image requests may carry ``lora_adapters``.
    """

    supported_tasks: tuple[str, ...] = ()
    supports_mask: bool = False
    supports_control_image: bool = False
    max_width: int | None = None
    max_height: int | None = None
    max_fps: int | None = None
    max_frames: int | None = None
    max_seed: int = DEFAULT_MAX_SEED
    supports_seed: bool = True
    cancels_running: bool = True
    previews: bool = False
    supports_lora: bool = False


@dataclass(frozen=True)
class ProviderAdapterInfo:
    """One LoRA adapter a backend can use (a file in its adapter folder, a LoRA repo in the HF cache).

    ``id`` is what to pass as a :class:`LoRAAdapterSpec` ``source`` (or to ``--lora``);
    ``weight_name`` picks the file inside a repo with several.
    """

    id: str
    path: str | None = None
    weight_name: str | None = None
    size_bytes: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderModelInfo:
    """One entry of a provider's model catalog (remote ``/models`` or local cache listing)."""

    id: str
    object: str | None = None
    created: int | None = None
    owned_by: str | None = None
    capabilities: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)


ProgressPhase = Literal["start", "load", "download", "step", "preview", "end"]


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report.

    ``phase`` is ``start`` and ``end`` for every run; ``step`` events carry ``step`` of
    ``total_steps``; ``preview`` events carry a partial image in ``preview``; ``load`` and
    ``download`` describe model loading. ``fraction`` is 0..1 when known.
    """

    task: str
    phase: ProgressPhase
    step: int | None = None
    total_steps: int | None = None
    fraction: float | None = None
    elapsed_s: float = 0.0
    message: str | None = None
    preview: bytes | None = None

    def __repr__(self) -> str:
        preview = f", preview=<{len(self.preview)} bytes>" if self.preview else ""
        return (
            f"ProgressEvent(task={self.task!r}, phase={self.phase!r}, step={self.step}, "
            f"total_steps={self.total_steps}, fraction={self.fraction}, elapsed_s={self.elapsed_s:.3f}"
            f"{', message=' + repr(self.message) if self.message else ''}{preview})"
        )


ProgressCallback = Callable[[ProgressEvent], None]

__all__ = [
    "DEFAULT_ANGLES",
    "DEFAULT_MAX_SEED",
    "GeneratedAsset",
    "IMAGE_TASKS",
    "ImageEditRequest",
    "ImageGenerationRequest",
    "ImageToVideoRequest",
    "ImageUpscaleRequest",
    "LoRAAdapterSpec",
    "MultiAngleRequest",
    "ProgressCallback",
    "ProgressEvent",
    "ProgressPhase",
    "ProviderAdapterInfo",
    "ProviderModelInfo",
    "TASKS",
    "Task",
    "VIDEO_TASKS",
    "VideoGenerationRequest",
    "VisionBackendCapabilities",
]
