"""Local Hugging Face Diffusers: text-to-image, image-to-image and inpainting on one set of weights.

Install with ``pip install "abstractvision[diffusers]"``. torch and diffusers are imported on the
first load, not when this module is imported.

* **One load, three tasks.** The text-to-image pipeline is loaded once; image-to-image and
  inpainting pipelines are derived from it with ``from_pipe``, which shares the modules instead of
  loading a second copy of the weights.
* **Cache-only by default.** Loading passes ``local_files_only=True`` unless ``allow_download``;
  a model that is not cached fails with the command that downloads it.
* **Reproducible.** Every call uses a seeded ``torch.Generator`` (a seed is chosen and recorded
  when none is given), so the metadata is enough to get the same pixels again.
* **Progress and cancel** run through ``callback_on_step_end``: the reporter raises
  :class:`GenerationCancelledError` inside it, which unwinds the denoising loop at once.
* **Serialised.** One re-entrant lock guards loading, task switches and calls: a pipeline object
  is not safe to call from two threads at once.
* **LoRA adapters** (``lora_adapters``) are found before anything loads (see
  :mod:`._diffusers_lora_sources`: ``lora_dir``, local files and folders, cached hub repos), loaded
  once per pipeline and switched per call (see :mod:`._diffusers_lora`), under the same lock.
* **Upscaling** (``image_upscale``) runs the configured ``upscaler`` pipeline (see
  :mod:`._diffusers_upscale`); the task is offered only when one is configured.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import inspect
import sys
import threading
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import setting
from ..errors import (
    BackendNotConfiguredError,
    CapabilityNotSupportedError,
    InvalidRequestError,
)
from ..media import decode_image, encode_png
from ..progress import ProgressReporter, as_reporter
from ..types import (
    IMAGE_TASKS,
    GeneratedAsset,
    ImageEditRequest,
    ImageGenerationRequest,
    ImageUpscaleRequest,
    ProviderAdapterInfo,
    ProviderModelInfo,
    VisionBackendCapabilities,
)
from ..validation import check_size_step, random_seed
from ._diffusers_catalog import list_cached_pipelines, pipeline_folder, size_multiple
from ._diffusers_loading import (
    LoadOptions,
    engine_errors,
    generator_device,
    import_engine,
    load_pipeline,
    release_accelerator_memory,
    resolve_device,
    resolve_dtype,
)
from ._diffusers_lora import PipelineAdapters
from ._diffusers_lora_sources import list_adapters, resolve_adapters
from ._diffusers_upscale import UPSCALER_SETTING, DiffusersUpscaler
from ._upscale import fit_upscaled
from .base_backend import UPSCALE_TASK, ProgressArg, VisionBackend, replace_request

#: Keys the backend sets itself; a request's ``extra`` may not override them.
_RESERVED_CALL_ARGS = frozenset(
    {"prompt", "image", "mask_image", "generator", "output_type", "callback_on_step_end", "return_dict"}
    | {"callback", "callback_steps"}
)

#: What to try when a pipeline call runs out of memory.
_CALL_OUT_OF_MEMORY_ADVICE = "a smaller width/height, cpu_offload='model', or torch_dtype='float16'"

#: Size multiple used when neither the registry nor the pipeline's files say otherwise (SD-style VAE).
_DEFAULT_SIZE_MULTIPLE = 8


@dataclass(frozen=True)
class HuggingFaceDiffusersBackendConfig:
    """How to find and run a Diffusers pipeline.

    ``model_id``: a hub repo id (``runwayml/stable-diffusion-v1-5``), a local pipeline folder, or a
    single-file ``.safetensors``/``.ckpt`` checkpoint. ``device``/``torch_dtype`` ``auto``: cuda, then
    mps, then cpu; float16 on GPUs, float32 on CPU. ``allow_download`` (default off) lets the
    hub download a model that is not cached. ``auto_retry_fp32`` reruns a NaN or all-black
    half-precision result in float32. ``cpu_offload``: ``auto`` | ``model`` | ``sequential`` | ``none``
    (CUDA only; ``auto`` offloads on GPUs under 12 GiB). ``scheduler``: an alias (``euler``,
    ``ddim``, ``dpmpp_2m``, ...) or a Diffusers scheduler class name. ``single_file_config``: for a
    single-file checkpoint, its base model's Diffusers config (a local pipeline folder or a cached
    repo id); by default the base model Diffusers infers from the checkpoint, looked up in the cache.
    ``upscaler``: a hub repo id or local folder of a Diffusers upscale pipeline
    (``stabilityai/stable-diffusion-x4-upscaler``), loaded like the model (cache-only unless
    ``allow_download``; ``revision``/``variant`` are the model's only); it enables ``image_upscale``.
    ``lora_dir``: a folder of LoRA ``.safetensors`` files that requests name without the suffix
    (``LoRAAdapterSpec("ink")`` for ``ink.safetensors``); adapters from the hub follow the model's
    cache-only rule.
    """

    #: The REPL's ``/backend NAME VALUE...`` shorthands: which fields the positional words set.
    positional_forms: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("model_id",),
        ("model_id", "device"),
        ("model_id", "device", "torch_dtype"),
    )

    model_id: str | None = setting(
        env=(
            "ABSTRACTVISION_DIFFUSERS_MODEL",
            "ABSTRACTVISION_DIFFUSERS_MODEL_ID",
            "ABSTRACTVISION_MODEL_ID",
            "ABSTRACTCORE_VISION_MODEL_ID",
        ),
        flag="--model",
        help="Hub repo id, local pipeline folder or single-file checkpoint.",
    )
    device: str = setting(
        "auto",
        env=("ABSTRACTVISION_DIFFUSERS_DEVICE", "ABSTRACTCORE_VISION_DEVICE"),
        help="Torch device: auto, cpu, cuda, cuda:1, mps.",
    )
    torch_dtype: str = setting(
        "auto",
        env=("ABSTRACTVISION_DIFFUSERS_TORCH_DTYPE", "ABSTRACTCORE_VISION_TORCH_DTYPE"),
        flag="--dtype",
        help="Torch dtype: auto, float16, bfloat16, float32.",
    )
    allow_download: bool = setting(
        False,
        env=("ABSTRACTVISION_DIFFUSERS_ALLOW_DOWNLOAD", "ABSTRACTCORE_VISION_ALLOW_DOWNLOAD"),
        help="Let Diffusers download a model that is not in the local cache (off unless given).",
    )
    auto_retry_fp32: bool = True
    cache_dir: str | None = setting(
        env="ABSTRACTVISION_DIFFUSERS_CACHE_DIR", help="Hugging Face cache folder Diffusers reads from."
    )
    revision: str | None = setting(env="ABSTRACTVISION_DIFFUSERS_REVISION", help="Hub revision (branch, tag, commit).")
    variant: str | None = setting(env="ABSTRACTVISION_DIFFUSERS_VARIANT", help="Weights variant, e.g. fp16.")
    use_safetensors: bool | None = None
    low_cpu_mem_usage: bool = True
    cpu_offload: str = setting(
        "auto",
        env="ABSTRACTVISION_DIFFUSERS_CPU_OFFLOAD",
        help="CUDA offload: auto, model, sequential or none.",
    )
    scheduler: str | None = setting(
        env="ABSTRACTVISION_DIFFUSERS_SCHEDULER",
        help="Scheduler alias (euler, ddim, dpmpp_2m, ...) or a Diffusers scheduler class name.",
    )
    single_file_config: str | None = setting(
        env="ABSTRACTVISION_DIFFUSERS_SINGLE_FILE_CONFIG",
        help="For a single-file checkpoint: its base model's Diffusers config (local folder or cached repo id).",
    )
    upscaler: str | None = setting(
        env="ABSTRACTVISION_DIFFUSERS_UPSCALER",
        flag="--upscaler",
        help="Upscale pipeline (hub repo id or local folder, e.g. stabilityai/stable-diffusion-x4-upscaler); "
        "enables image_upscale.",
    )
    lora_dir: str | None = setting(
        env="ABSTRACTVISION_DIFFUSERS_LORA_DIR",
        help="Folder of LoRA adapter files (.safetensors); a request names one by its file name without the suffix.",
    )


class HuggingFaceDiffusersVisionBackend(VisionBackend):
    """Run a local Diffusers pipeline (see the module docstring for the guarantees)."""

    name = "diffusers"
    config_class = HuggingFaceDiffusersBackendConfig

    def __init__(self, config: HuggingFaceDiffusersBackendConfig | None = None, *, registry: Any = None):
        self.config = config or HuggingFaceDiffusersBackendConfig()
        self._registry = registry
        self._lock = threading.RLock()
        self._pipelines: dict[str, Any] = {}  # "text_to_image" | "image_to_image" | "inpaint" -> pipeline
        self._upscaler: DiffusersUpscaler | None = None  # loaded on the first upscale
        self._adapters = PipelineAdapters(self.config.model_id)  # replaced with each load of the weights
        self._dtype: Any = None
        self._device: str | None = None
        self._force_fp32 = False  # set once a half-precision run came back NaN

    # ---- capabilities, catalog, lifecycle ---------------------------------------------------
    def get_capabilities(self) -> VisionBackendCapabilities:
        # Seeds: the default 0..2**32-1. torch's CPU generator (used on CPU and MPS) keeps only a seed's low
        # 32 bits; CUDA's would take 64, but the seeds a backend accepts must not depend on the device.
        tasks = IMAGE_TASKS if self._generates else ()  # an upscaler alone only upscales
        if self.config.upscaler:
            tasks = (*tasks, UPSCALE_TASK)
        return VisionBackendCapabilities(supported_tasks=tasks, supports_mask=True, supports_lora=self._generates)

    @property
    def _generates(self) -> bool:
        return bool(self.config.model_id) or not self.config.upscaler

    def capability_hint(self, task: str) -> str | None:
        if task == UPSCALE_TASK and not self.config.upscaler:
            return f"configure an upscale pipeline: {UPSCALER_SETTING} (e.g. stabilityai/stable-diffusion-x4-upscaler)"
        return None

    def list_provider_models(self, task: str | None = None) -> list[ProviderModelInfo]:
        """Diffusers pipelines in the local hub cache (``cache_dir`` or the default) fit for ``task``."""
        return list_cached_pipelines(self.config.cache_dir, task)

    def list_provider_adapters(self) -> list[ProviderAdapterInfo]:
        """The ``.safetensors`` files in ``lora_dir`` and the LoRA repos in the hub cache (files only, no network)."""
        return list_adapters(self.config)

    def preload(self) -> None:
        """Load the model and the upscaler, whichever are configured."""
        with self._lock:
            if self._generates:
                self._pipeline("text_to_image", None)
            if self.config.upscaler and self._upscaler is None:
                self._upscaler = DiffusersUpscaler.load(self.config, None)

    def unload(self) -> None:
        """Drop every pipeline reference, collect, and hand cached accelerator memory back."""
        with self._lock:
            loaded = bool(self._pipelines) or self._upscaler is not None
            self._pipelines.clear()
            self._upscaler = None
            self._dtype = self._device = None
            gc.collect()
            if loaded and "torch" in sys.modules:
                release_accelerator_memory(sys.modules["torch"])

    @property
    def loaded(self) -> bool:
        return bool(self._pipelines) or self._upscaler is not None

    # ---- normalize hooks ----------------------------------------------------------------------
    def normalize_generate_image_request(self, request: ImageGenerationRequest) -> ImageGenerationRequest:
        self._require_model()
        request = self._apply_defaults(request, "text_to_image", ("width", "height", "steps", "guidance_scale"))
        self._check_sizes(request)
        return request

    def normalize_edit_image_request(self, request: ImageEditRequest) -> ImageEditRequest:
        self._require_model()
        request = self._apply_defaults(request, "image_to_image", ("steps", "guidance_scale"))
        strength = request.extra.get("strength")
        if strength is None:
            strength = self._registry_defaults("image_to_image").get("strength")
            if strength is not None:
                request = replace_request(request, extra={"strength": strength})
        if strength is not None:
            if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 1:
                raise InvalidRequestError(f"strength: must be a number in (0, 1], got {strength!r}", field="strength")
            if request.steps is not None and int(request.steps * strength) < 1:
                raise InvalidRequestError(
                    f"strength: {strength} x steps {request.steps} leaves no denoising step; "
                    f"raise steps to at least {int(1 / strength) + 1} or strength",
                    field="strength",
                )
        return request

    # ---- tasks --------------------------------------------------------------------------------
    def generate_image(self, request: ImageGenerationRequest) -> GeneratedAsset:
        return self.generate_image_with_progress(request, None)

    def edit_image(self, request: ImageEditRequest) -> GeneratedAsset:
        return self.edit_image_with_progress(request, None)

    def generate_image_with_progress(
        self, request: ImageGenerationRequest, progress_callback: ProgressArg = None
    ) -> GeneratedAsset:
        call = {"prompt": request.prompt, "negative_prompt": request.negative_prompt}
        if request.width is not None:
            call["width"] = request.width
        if request.height is not None:
            call["height"] = request.height
        return self._generate("text_to_image", request, call, as_reporter(progress_callback, "text_to_image"))

    def edit_image_with_progress(
        self, request: ImageEditRequest, progress_callback: ProgressArg = None
    ) -> GeneratedAsset:
        image = decode_image(request.image)
        call: dict[str, Any] = {"prompt": request.prompt, "negative_prompt": request.negative_prompt, "image": image}
        kind = "image_to_image"
        if request.mask is not None:
            kind = "inpaint"
            call.update(mask_image=decode_image(request.mask, "L"), width=image.width, height=image.height)
        return self._generate(kind, request, call, as_reporter(progress_callback, "image_to_image"))

    def upscale_image(self, request: ImageUpscaleRequest) -> GeneratedAsset:
        return self.upscale_image_with_progress(request, None)

    def upscale_image_with_progress(
        self, request: ImageUpscaleRequest, progress_callback: ProgressArg = None
    ) -> GeneratedAsset:
        """Run the upscaler (loaded once), then resize to the requested size (see :mod:`._upscale`)."""
        if not self.config.upscaler:
            hint = self.capability_hint(UPSCALE_TASK)
            raise BackendNotConfiguredError(f"the diffusers backend has no upscaler; {hint}")
        reporter = as_reporter(progress_callback, UPSCALE_TASK)
        reporter.start(total_steps=request.steps)
        with self._lock:
            if self._upscaler is None:
                self._upscaler = DiffusersUpscaler.load(self.config, reporter)
            upscaler = self._upscaler
            extra = self._extra_args(upscaler.pipe, request.extra)
            picture, metadata = upscaler.run(request, extra, reporter)
        picture, sizes = fit_upscaled(picture, request)
        asset = GeneratedAsset("image", encode_png(picture), "image/png", {**metadata, **sizes})
        reporter.end(total_steps=metadata["steps"])
        return asset

    # ---- the call -----------------------------------------------------------------------------
    def _generate(self, kind: str, request: Any, call: dict[str, Any], reporter: ProgressReporter) -> GeneratedAsset:
        seed = request.seed if request.seed is not None else random_seed()
        adapters = resolve_adapters(request.lora_adapters, self.config)  # a missing one fails before any load
        reporter.start(total_steps=request.steps)
        with self._lock:
            pipe = self._pipeline(kind, reporter)
            self._adapters.apply(pipe, adapters, reporter)
            call.update(self._extra_args(pipe, request.extra))
            defaults = _call_defaults(pipe)
            call["num_inference_steps"] = request.steps or defaults.get("num_inference_steps")
            guidance = request.guidance_scale
            call["guidance_scale"] = defaults.get("guidance_scale") if guidance is None else guidance
            call = {k: v for k, v in call.items() if v is not None}
            images, done = self._call(pipe, call, seed, reporter)
            retried = self._needs_fp32_retry(images)
            if retried:
                pipe = self._reload_in_fp32(kind)
                self._adapters.apply(pipe, adapters, reporter)
                images, done = self._call(pipe, call, seed, reporter)
            metadata = self._metadata(pipe, call, seed, retried)
        picture = pipe.numpy_to_pil(images)[0]
        metadata.update(width=picture.width, height=picture.height)
        asset = GeneratedAsset("image", encode_png(picture), "image/png", metadata)
        reporter.end(total_steps=done)
        return asset

    def _call(self, pipe: Any, call: dict[str, Any], seed: int, reporter: ProgressReporter) -> tuple[Any, int]:
        """One pipeline call; returns ``(float images in [0, 1], steps run)``."""
        torch = sys.modules["torch"]
        generator = torch.Generator(device=generator_device(self._device)).manual_seed(seed)
        steps_run = [0]

        def on_step_end(pipeline: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            steps_run[0] = index + 1
            reporter.step(index + 1, getattr(pipeline, "_num_timesteps", None) or call["num_inference_steps"])
            return tensors

        with engine_errors(self.config.model_id, "generating", _CALL_OUT_OF_MEMORY_ADVICE):
            output = pipe(**call, generator=generator, output_type="np", callback_on_step_end=on_step_end)
        return output.images, steps_run[0]

    def _needs_fp32_retry(self, images: Any) -> bool:
        """A half-precision run that overflowed gives NaN (or, after clamping, black) images."""
        if not self.config.auto_retry_fp32 or self._dtype == sys.modules["torch"].float32:
            return False
        import numpy

        return bool(numpy.isnan(images).any() or images.max() <= 0)

    def _reload_in_fp32(self, kind: str) -> Any:
        """Reload from disk in float32: converting the loaded half-precision weights back would keep
        the values that already overflowed. The backend stays in float32 from then on."""
        warnings.warn(
            f"{self.config.model_id}: the {str(self._dtype).removeprefix('torch.')} result was NaN or all black; "
            "retrying in float32 (set torch_dtype='float32' to skip the half-precision attempt)",
            RuntimeWarning,
            stacklevel=4,
        )
        self._force_fp32 = True
        self._pipelines.clear()
        gc.collect()
        return self._pipeline(kind, None)

    def _metadata(self, pipe: Any, call: dict[str, Any], seed: int, retried: bool) -> dict[str, Any]:
        metadata = {
            "model": self.config.model_id,
            "seed": seed,
            "steps": call["num_inference_steps"],
            "guidance_scale": call.get("guidance_scale"),
            "scheduler": type(pipe.scheduler).__name__,
            "pipeline": type(pipe).__name__,
            "torch_dtype": str(self._dtype).removeprefix("torch."),
            "device": self._device,
        }
        for key in ("negative_prompt", "width", "height", "strength"):  # what else shaped the picture
            if call.get(key) is not None:
                metadata[key] = call[key]
        if retried:
            metadata["fp32_retry"] = True
        return metadata

    def _extra_args(self, pipe: Any, extra: dict[str, Any]) -> dict[str, Any]:
        """Forward ``extra`` keys the pipeline's ``__call__`` accepts; refuse the rest by name."""
        accepted = set(_call_parameters(type(pipe))) - _RESERVED_CALL_ARGS - {"self"}
        unknown = sorted(set(extra) - accepted)
        if unknown:
            raise InvalidRequestError(
                f"extra: {', '.join(unknown)} not accepted by {type(pipe).__name__} "
                f"(accepted: {', '.join(sorted(accepted))})",
                field=f"extra[{unknown[0]!r}]",
            )
        return dict(extra)

    # ---- loading ------------------------------------------------------------------------------
    def _pipeline(self, kind: str, reporter: ProgressReporter | None) -> Any:
        """The pipeline for ``kind``, loading the base one on first use (call with the lock held)."""
        if kind in self._pipelines:
            return self._pipelines[kind]
        if "text_to_image" not in self._pipelines:
            model_id = self._require_model()
            if reporter is not None:
                if self.config.allow_download:
                    reporter.report("download", message=f"loading {model_id}; downloading it if not cached")
                else:
                    reporter.report("load", message=f"loading {model_id} from the local cache")
            torch, _ = import_engine()
            device = resolve_device(torch, self.config.device)
            dtype = torch.float32 if self._force_fp32 else resolve_dtype(torch, self.config.torch_dtype, device)
            self._pipelines["text_to_image"] = load_pipeline(self._load_options(model_id, device, dtype))
            self._adapters = PipelineAdapters(model_id)  # fresh weights hold no adapters
            self._device, self._dtype = device, dtype
        if kind not in self._pipelines:
            self._pipelines[kind] = self._derive(kind)
        return self._pipelines[kind]

    def _derive(self, kind: str) -> Any:
        """An image-to-image or inpainting pipeline sharing the loaded modules (no second load)."""
        _, diffusers = import_engine()
        auto = diffusers.AutoPipelineForInpainting if kind == "inpaint" else diffusers.AutoPipelineForImage2Image
        base = self._pipelines["text_to_image"]
        try:
            pipe = auto.from_pipe(base)
        except ValueError as exc:
            task = "inpainting" if kind == "inpaint" else "image_to_image"
            raise CapabilityNotSupportedError(
                f"{type(base).__name__} ({self.config.model_id}) has no {task} pipeline in Diffusers: {exc}"
            ) from exc
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _load_options(self, model_id: str, device: str, dtype: Any) -> LoadOptions:
        c = self.config
        return LoadOptions(
            model_id=model_id,
            device=device,
            dtype=dtype,
            allow_download=c.allow_download,
            cache_dir=c.cache_dir,
            revision=c.revision,
            variant=c.variant,
            use_safetensors=c.use_safetensors,
            low_cpu_mem_usage=c.low_cpu_mem_usage,
            cpu_offload=c.cpu_offload,
            scheduler=c.scheduler,
            single_file_config=c.single_file_config,
        )

    def _require_model(self) -> str:
        if not self.config.model_id:
            raise BackendNotConfiguredError(
                "the diffusers backend needs a model: pass model_id= (a hub repo id such as "
                "runwayml/stable-diffusion-v1-5, a pipeline folder or a .safetensors file), "
                "--model on the command line, or set ABSTRACTVISION_DIFFUSERS_MODEL"
            )
        return self.config.model_id

    # ---- model defaults and limits ------------------------------------------------------------
    def _registry_task(self, task: str) -> Any:
        if self._registry is None:
            from ..model_capabilities import VisionModelCapabilitiesRegistry

            self._registry = VisionModelCapabilitiesRegistry()
        # resolve, not get: get's "did you mean" search for an unlisted model (any local folder)
        # costs ~0.4 ms, twice per call.
        known = self._registry.resolve(self.config.model_id)
        return self._registry.get(known).tasks.get(task) if known is not None else None

    def _registry_defaults(self, task: str) -> dict[str, Any]:
        spec = self._registry_task(task)
        return spec.defaults() if spec is not None else {}

    def _apply_defaults(self, request: Any, task: str, names: tuple[str, ...]) -> Any:
        defaults = self._registry_defaults(task)
        changes = {n: defaults[n] for n in names if getattr(request, n) is None and n in defaults}
        return dataclasses.replace(request, **changes) if changes else request

    def _check_sizes(self, request: ImageGenerationRequest) -> None:
        spec = self._registry_task("text_to_image")
        multiple = None
        if self._pipelines:
            multiple = getattr(self._pipelines["text_to_image"], "vae_scale_factor", None)
        if multiple is None:
            folder = pipeline_folder(self.config.model_id, self.config.cache_dir)
            multiple = size_multiple(folder) if folder is not None else None
        for name in ("width", "height"):
            value = getattr(request, name)
            if value is None:
                continue
            param = spec.params.get(name) if spec is not None else None
            step = (param.multiple_of if param is not None else None) or multiple or _DEFAULT_SIZE_MULTIPLE
            low, high = (param.min, param.max) if param is not None else (None, None)
            check_size_step(
                name,
                value,
                step,
                int(low) if low is not None else None,
                int(high) if high is not None else None,
                subject=self.config.model_id,
            )


@functools.lru_cache(maxsize=64)
def _call_parameters(pipeline_class: type) -> Any:
    """The parameters of a pipeline class's ``__call__``, read once per class: ``inspect.signature``
    costs ~65 us, and every call needs them twice."""
    return inspect.signature(pipeline_class.__call__).parameters


def _call_defaults(pipe: Any) -> dict[str, Any]:
    """The pipeline's own defaults for steps and guidance (recorded so metadata is complete)."""
    params = _call_parameters(type(pipe))
    return {
        name: params[name].default
        for name in ("num_inference_steps", "guidance_scale")
        if name in params and params[name].default is not inspect.Parameter.empty
    }


__all__ = ["HuggingFaceDiffusersBackendConfig", "HuggingFaceDiffusersVisionBackend"]
