"""The wire shapes: OpenAI's Images/Videos/Models shapes plus this server's jobs, as pydantic models.

They are what FastAPI validates requests against and what ``/openapi.json`` publishes, so clients
and property-based tests see the same contract the routes keep. Request models allow extra fields:
anything beyond the portable ones goes to the backend's ``extra``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field

ResponseFormat = Literal["b64_json", "url"]
OutputFormat = Literal["png", "jpeg", "webp"]
JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
JobTask = Literal[
    "text_to_image", "image_to_image", "text_to_video", "image_to_video", "multi_view_image", "image_upscale"
]

_MAX_PROMPT = 32_000
_MAX_SEED = 2**64 - 1
_MAX_SCALE = 16


class LoRAAdapter(BaseModel):
    """One LoRA adapter as an object (``"NAME[:SCALE]"`` words are the short form)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(..., min_length=1, max_length=4096, description="An adapter id from GET /v1/adapters.")
    scale: float | None = Field(None, ge=-10, le=10, allow_inf_nan=False, description="Strength (default 1; 0: none).")
    weight_name: str | None = Field(None, max_length=1024, description="The listed entry's weight_name, if it has one.")
    subfolder: str | None = Field(None, max_length=1024, description="Never offered by this server.")
    adapter_name: str | None = Field(None, max_length=64, description="The name the engine knows it by.")


#: ``lora``'s schema: up to 8 adapters, as objects or ``"NAME[:SCALE]"`` words.
_LORA_DESCRIPTION = (
    "LoRA adapters for this request: objects, or 'NAME[:SCALE]' words. Only adapters this server lists "
    "(GET /v1/adapters) are accepted; any other is a 404 adapter_not_found."
)


class GenerationControls(BaseModel):
    """The portable controls, as top-level extension fields of OpenAI's request."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(None, max_length=512, description="The served model id (GET /v1/models).")
    n: int | None = Field(None, ge=1, description="How many images (at most the server's max_n).")
    size: str | None = Field(None, max_length=32, description="'WIDTHxHEIGHT' or 'auto' (the backend's default).")
    response_format: ResponseFormat | None = Field(None, description="b64_json (default) or url.")
    output_format: OutputFormat | None = None
    output_compression: int | None = Field(None, ge=0, le=100)
    seed: int | None = Field(None, ge=0, le=_MAX_SEED)
    steps: int | None = Field(None, ge=1, le=10_000)
    guidance_scale: float | None = Field(None, ge=0, le=1_000, allow_inf_nan=False)
    negative_prompt: str | None = Field(None, max_length=_MAX_PROMPT)
    width: int | None = Field(None, ge=1, le=65_536)
    height: int | None = Field(None, ge=1, le=65_536)


class ImageGenerationBody(GenerationControls):
    """``POST /v1/images/generations``."""

    prompt: str = Field(..., min_length=1, max_length=_MAX_PROMPT)
    stream: bool | None = Field(None, description="Answer with server-sent events (partial images, then the result).")
    partial_images: int | None = Field(None, ge=0, le=3, description="Partial images to stream, 0-3.")
    lora: list[LoRAAdapter | str] | None = Field(None, max_length=8, description=_LORA_DESCRIPTION)


class JobBody(GenerationControls):
    """``POST /v1/jobs``: a task and its fields; images as base64 (optionally a data: URL)."""

    task: JobTask
    prompt: str | None = Field(None, max_length=_MAX_PROMPT)
    image: str | None = Field(None, description="Base64 of the input image (image_to_image, image_to_video).")
    images: list[str] | None = Field(None, max_length=16, description="Further reference images, base64.")
    mask: str | None = Field(None, description="Base64 of the mask (white = repaint).")
    reference_image: str | None = Field(None, description="Base64 reference for multi_view_image.")
    strength: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    fps: int | None = Field(None, ge=1, le=240)
    num_frames: int | None = Field(None, ge=1, le=10_000)
    scale: float | None = Field(None, ge=1, le=_MAX_SCALE, allow_inf_nan=False, description="image_upscale factor.")
    lora: list[LoRAAdapter | str] | None = Field(
        None, max_length=8, description=_LORA_DESCRIPTION + " text_to_image and image_to_image only."
    )


class VideoBody(GenerationControls):
    """``POST /v1/videos`` (OpenAI's Videos API) as JSON."""

    prompt: str = Field(..., min_length=1, max_length=_MAX_PROMPT)
    seconds: str | int | None = Field(None, description="Clip length in seconds.")
    fps: int | None = Field(None, ge=1, le=240)
    num_frames: int | None = Field(None, ge=1, le=10_000)


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ImageItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None
    seed: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageItem]
    output_format: OutputFormat | None = None
    size: str | None = None


class ResultItem(BaseModel):
    file_id: str
    content_type: str
    seed: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Progress(BaseModel):
    step: int | None = None
    total: int | None = None


class JobView(BaseModel):
    id: str
    object: Literal["job"] = "job"
    task: str
    status: JobStatus
    created: int
    progress: Progress
    poll_url: str
    queue_position: int | None = None
    result: list[ResultItem] | None = None
    error: ErrorDetail | None = None


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobView]


class ModelEntry(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    tasks: list[str]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelEntry]


class Limits(BaseModel):
    sizes: list[str]
    max_width: int | None
    max_height: int | None
    max_pixels: int
    max_n: int
    max_queue: int
    max_body_bytes: int


class Features(BaseModel):
    cancel_queued: bool
    cancel_running: bool
    stream: bool
    jobs: bool
    mask: bool
    previews: bool
    lora: bool


class AdapterEntry(BaseModel):
    id: str
    object: Literal["adapter"] = "adapter"
    weight_name: str | None = None
    size_bytes: int | None = None


class AdapterList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AdapterEntry]


class Capabilities(BaseModel):
    backend: str
    model: str
    tasks: list[str]
    limits: Limits
    features: Features
    auth_required: bool


class VideoObject(BaseModel):
    id: str
    object: Literal["video"] = "video"
    created_at: int
    completed_at: int | None = None
    status: Literal["queued", "in_progress", "completed", "failed"]
    model: str
    progress: int
    seconds: str | None = None
    size: str | None = None
    error: ErrorDetail | None = None


class Health(BaseModel):
    status: str
    detail: str | None = None


class ImageEditForm(GenerationControls):
    """``POST /v1/images/edits`` (multipart): ``image`` or ``image[]`` (several), optional ``mask``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    prompt: str = Field(..., min_length=1, max_length=_MAX_PROMPT)
    image: list[UploadFile] | None = Field(None, description="The image to edit (more: reference images).")
    image_array: list[UploadFile] | None = Field(None, alias="image[]", description="Several images, OpenAI style.")
    mask: UploadFile | None = Field(None, description="White = repaint; the image's size.")
    strength: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    stream: bool | None = None
    partial_images: int | None = Field(None, ge=0, le=3)
    lora: list[str] | None = Field(
        None, description="LoRA adapters: 'NAME[:SCALE]' fields (repeated), or one JSON array. " + _LORA_DESCRIPTION
    )
    lora_array: list[str] | None = Field(None, alias="lora[]", description="The same, as the openai SDK sends lists.")


class ImageUpscaleForm(GenerationControls):
    """``POST /v1/images/upscale`` (multipart): ``image``, and ``scale`` or ``size`` (neither: the engine's factor)."""

    image: UploadFile | None = Field(None, description="The image to upscale.")
    scale: float | None = Field(None, ge=1, le=_MAX_SCALE, allow_inf_nan=False, description="Enlarge by this factor.")
    prompt: str | None = Field(None, max_length=_MAX_PROMPT, description="Prompt-guided upscalers only.")


class VideoForm(VideoBody):
    """``POST /v1/videos`` as multipart, with an ``input_reference`` image (image_to_video)."""

    input_reference: UploadFile | None = None
