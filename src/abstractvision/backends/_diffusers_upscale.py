"""Diffusers upscaling: the configured upscale pipeline, loaded on first use and kept.

Why its own pipeline: an upscaler (``stabilityai/stable-diffusion-x4-upscaler``, a
``StableDiffusionUpscalePipeline``; or ``StableDiffusionLatentUpscalePipeline``) is a separate set
of weights with its own UNet, so it cannot be derived from the generation model with ``from_pipe``.
It is loaded with the backend's device, dtype, offload and cache-only rules (``upscaler`` is a hub
repo id or a local pipeline folder; nothing downloads unless ``allow_download``), once, and kept
next to the generation pipelines until ``unload``.

The call mirrors a generation: a seeded generator (the seed is recorded), the pipeline's own steps
and guidance unless the request sets them, progress and cancel from its step callback (the
upscale pipelines take the older ``callback(step, timestep, latents)``; a raise there unwinds the
loop). The output is the engine's factor times the input; :func:`._upscale.fit_upscaled` then
brings it to the requested size.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendNotConfiguredError
from ..media import decode_image
from ..progress import ProgressReporter
from ..types import ImageUpscaleRequest
from ..validation import random_seed
from ._diffusers_loading import (
    LoadOptions,
    engine_errors,
    generator_device,
    import_engine,
    load_pipeline,
    resolve_device,
    resolve_dtype,
)

#: Where the upscaler comes from, for messages about it.
UPSCALER_SETTING = "upscaler= / --upscaler / ABSTRACTVISION_DIFFUSERS_UPSCALER"

#: What to try when an upscale runs out of memory.
_OUT_OF_MEMORY_ADVICE = "a smaller input image, cpu_offload='model', or torch_dtype='float16'"


@dataclass
class DiffusersUpscaler:
    """A loaded upscale pipeline and where it runs."""

    source: str
    pipe: Any
    device: str
    dtype: Any

    @classmethod
    def load(cls, config: Any, reporter: ProgressReporter | None) -> DiffusersUpscaler:
        """Load ``config.upscaler`` with the backend's device, dtype, offload and cache rules."""
        source = config.upscaler
        if Path(source).expanduser().is_file():
            raise BackendNotConfiguredError(
                f"upscaler={source!r} is a single file; give the folder or hub repo id of a Diffusers upscale "
                f"pipeline, e.g. stabilityai/stable-diffusion-x4-upscaler ({UPSCALER_SETTING})"
            )
        if reporter is not None:
            verb = "downloading it if not cached" if config.allow_download else "from the local cache"
            reporter.report("download" if config.allow_download else "load", message=f"loading {source} {verb}")
        torch, _ = import_engine()
        device = resolve_device(torch, config.device)
        dtype = resolve_dtype(torch, config.torch_dtype, device)
        options = LoadOptions(
            model_id=source,
            device=device,
            dtype=dtype,
            allow_download=config.allow_download,
            cache_dir=config.cache_dir,
            revision=None,  # revision and variant name versions of model_id, not of the upscaler
            variant=None,
            use_safetensors=config.use_safetensors,
            low_cpu_mem_usage=config.low_cpu_mem_usage,
            cpu_offload=config.cpu_offload,
            scheduler=None,
            pipeline_class="DiffusionPipeline",
        )
        pipe = load_pipeline(options)
        if "Upscale" not in type(pipe).__name__:
            raise BackendNotConfiguredError(
                f"upscaler={source!r} is a {type(pipe).__name__}, not an upscale pipeline; use one such as "
                f"stabilityai/stable-diffusion-x4-upscaler ({UPSCALER_SETTING})"
            )
        return cls(source, pipe, device, dtype)

    def run(
        self, request: ImageUpscaleRequest, extra: dict[str, Any], reporter: ProgressReporter
    ) -> tuple[Any, dict[str, Any]]:
        """Upscale once; ``(PIL image at the engine's factor, metadata)``."""
        pipe = self.pipe
        params = inspect.signature(pipe.__call__).parameters
        seed = request.seed if request.seed is not None else random_seed()
        call: dict[str, Any] = {"prompt": request.prompt or "", "image": decode_image(request.image), **extra}
        if request.negative_prompt is not None:
            call["negative_prompt"] = request.negative_prompt
        steps = request.steps or _default(params, "num_inference_steps")
        guidance = request.guidance_scale if request.guidance_scale is not None else _default(params, "guidance_scale")
        call.update({k: v for k, v in (("num_inference_steps", steps), ("guidance_scale", guidance)) if v is not None})

        def on_step(index: int, _timestep: Any, _latents: Any) -> None:  # the upscale pipelines' legacy callback
            reporter.step(index + 1, steps)

        def on_step_end(_pipe: Any, index: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            reporter.step(index + 1, steps)
            return tensors

        if "callback_on_step_end" in params:
            call["callback_on_step_end"] = on_step_end
        else:
            call.update(callback=on_step, callback_steps=1)
        torch = sys.modules["torch"]
        generator = torch.Generator(device=generator_device(self.device)).manual_seed(seed)
        with engine_errors(self.source, "upscaling", _OUT_OF_MEMORY_ADVICE):
            output = pipe(**call, generator=generator, output_type="np")
        metadata = {
            "model": self.source,
            "seed": seed,
            "steps": steps,
            "guidance_scale": guidance,
            "scheduler": type(pipe.scheduler).__name__,
            "pipeline": type(pipe).__name__,
            "torch_dtype": str(self.dtype).removeprefix("torch."),
            "device": self.device,
        }
        for key in ("prompt", "negative_prompt"):
            if call.get(key):
                metadata[key] = call[key]
        if "noise_level" in params:  # how much the x4 upscaler re-noises the input: part of the recipe
            metadata["noise_level"] = call.get("noise_level", _default(params, "noise_level"))
        return pipe.numpy_to_pil(output.images)[0], metadata


def _default(params: Any, name: str) -> Any:
    """The pipeline's own default for ``name`` (recorded, so the metadata is complete)."""
    param = params.get(name)
    return None if param is None or param.default is inspect.Parameter.empty else param.default


__all__ = ["DiffusersUpscaler", "UPSCALER_SETTING"]
