"""The backend contract every engine implements.

A backend is mostly declaration (its capabilities) plus one method per task. Only
:meth:`VisionBackend.generate_image` and :meth:`VisionBackend.edit_image` are required; the other
tasks default to :class:`CapabilityNotSupportedError`, and every hook (preload, unload, catalog,
normalize, progress, async, batch) has a working default, so a new engine overrides only what it
really does better.

The manager normalizes a request once (:meth:`VisionBackend.normalize`, the ``normalize_*`` hooks)
and then calls the ``*_with_progress`` forms through :meth:`VisionBackend.run` with a
:class:`~abstractvision.progress.ProgressReporter`; backends that can report steps override them,
the defaults report start and end around the plain method. ``run`` and the ``*_with_progress``
forms take the normalized request and do not normalize it again. Its image fields are
:class:`~abstractvision.media.InspectedImage` bytes: read their ``info`` (or call
:func:`~abstractvision.media.inspect_image`, which returns it without decoding) instead of decoding.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from ..errors import BatchGenerationError, CapabilityNotSupportedError
from ..progress import ProgressReporter, as_reporter
from ..types import (
    TASKS,
    GeneratedAsset,
    ImageEditRequest,
    ImageGenerationRequest,
    ImageToVideoRequest,
    ImageUpscaleRequest,
    MultiAngleRequest,
    ProgressEvent,
    ProviderAdapterInfo,
    ProviderModelInfo,
    VideoGenerationRequest,
    VisionBackendCapabilities,
)

ProgressArg = ProgressReporter | Callable[[ProgressEvent], None] | None

#: Upscaling is not one of the registry's five tasks, but it is routed like one.
UPSCALE_TASK = "image_upscale"

#: task name -> the backend's plain method for it. ``run`` dispatches through this table.
TASK_METHODS: dict[str, str] = {
    "text_to_image": "generate_image",
    "image_to_image": "edit_image",
    "text_to_video": "generate_video",
    "image_to_video": "image_to_video",
    "multi_view_image": "generate_angles",
    UPSCALE_TASK: "upscale_image",
}

REQUEST_TYPES: dict[str, type] = {
    "text_to_image": ImageGenerationRequest,
    "image_to_image": ImageEditRequest,
    "text_to_video": VideoGenerationRequest,
    "image_to_video": ImageToVideoRequest,
    "multi_view_image": MultiAngleRequest,
    UPSCALE_TASK: ImageUpscaleRequest,
}


class VisionBackend(ABC):
    """Base class of every engine (HTTP service, Diffusers, stable-diffusion.cpp, ...)."""

    #: Short identifier recorded in ``GeneratedAsset.metadata["backend"]``.
    name: ClassVar[str] = "backend"
    #: The dataclass of this backend's settings (fields declared with :func:`abstractvision.config.setting`),
    #: built by :func:`abstractvision.backends.create_backend` and passed as ``config=``; ``None``: no settings.
    config_class: ClassVar[type | None] = None

    # ---- required tasks -------------------------------------------------------------------
    @abstractmethod
    def generate_image(self, request: ImageGenerationRequest) -> GeneratedAsset:
        """text_to_image."""

    @abstractmethod
    def edit_image(self, request: ImageEditRequest) -> GeneratedAsset:
        """image_to_image (with ``request.mask``: inpainting)."""

    # ---- optional tasks -------------------------------------------------------------------
    def generate_video(self, request: VideoGenerationRequest) -> GeneratedAsset:
        raise self._unsupported("text_to_video")

    def image_to_video(self, request: ImageToVideoRequest) -> GeneratedAsset:
        raise self._unsupported("image_to_video")

    def generate_angles(self, request: MultiAngleRequest) -> list[GeneratedAsset]:
        raise self._unsupported("multi_view_image")

    def upscale_image(self, request: ImageUpscaleRequest) -> GeneratedAsset:
        raise self._unsupported(UPSCALE_TASK)

    # ---- capabilities and lifecycle -------------------------------------------------------
    def get_capabilities(self) -> VisionBackendCapabilities:
        """Default: the required tasks plus every optional task whose method is overridden."""
        tasks = tuple(t for t in (*TASKS, UPSCALE_TASK) if self._implements(t))
        return VisionBackendCapabilities(supported_tasks=tasks)

    def capability_hint(self, task: str) -> str | None:
        """What would make ``task`` available on this backend (a setting to configure), or ``None``.

        Why: a task a backend offers only when configured (upscaling needs an upscaler model) is
        refused before the backend runs; the refusal then says how to enable it instead of only "no".
        """
        return None

    def preload(self) -> None:
        """Load weights / open connections ahead of the first call. No-op by default."""

    def unload(self) -> None:
        """Release what :meth:`preload` or a call loaded; the next call reloads. Idempotent."""

    def close(self) -> None:
        """Release everything, including network clients. Default: :meth:`unload`."""
        self.unload()

    async def aclose(self) -> None:
        """:meth:`close` from async code; backends with async clients close them on the running loop."""
        self.close()

    def list_provider_models(self, task: str | None = None) -> list[ProviderModelInfo]:
        """The engine's own catalog (remote ``/models``, cached pipelines, model files)."""
        return []

    def list_provider_adapters(self) -> list[ProviderAdapterInfo]:
        """The LoRA adapters this backend can use without downloading (its adapter folder, LoRA
        repos in the HF cache). Empty where the backend takes no adapters."""
        return []

    # ---- normalize hooks: model-specific defaults and limits live here --------------------
    def normalize_generate_image_request(self, request: ImageGenerationRequest) -> ImageGenerationRequest:
        return request

    def normalize_edit_image_request(self, request: ImageEditRequest) -> ImageEditRequest:
        return request

    def normalize_generate_video_request(self, request: VideoGenerationRequest) -> VideoGenerationRequest:
        return request

    def normalize_image_to_video_request(self, request: ImageToVideoRequest) -> ImageToVideoRequest:
        return request

    def normalize_generate_angles_request(self, request: MultiAngleRequest) -> MultiAngleRequest:
        return request

    def normalize_upscale_image_request(self, request: ImageUpscaleRequest) -> ImageUpscaleRequest:
        return request

    # ---- progress forms: defaults report start and end around the plain method -----------
    def generate_image_with_progress(
        self, request: ImageGenerationRequest, progress_callback: ProgressArg = None
    ) -> GeneratedAsset:
        return self._bracketed("text_to_image", self.generate_image, request, progress_callback)

    def edit_image_with_progress(
        self, request: ImageEditRequest, progress_callback: ProgressArg = None
    ) -> GeneratedAsset:
        return self._bracketed("image_to_image", self.edit_image, request, progress_callback)

    def generate_video_with_progress(
        self, request: VideoGenerationRequest, progress_callback: ProgressArg = None
    ) -> GeneratedAsset:
        return self._bracketed("text_to_video", self.generate_video, request, progress_callback)

    def image_to_video_with_progress(
        self, request: ImageToVideoRequest, progress_callback: ProgressArg = None
    ) -> GeneratedAsset:
        return self._bracketed("image_to_video", self.image_to_video, request, progress_callback)

    def generate_angles_with_progress(
        self, request: MultiAngleRequest, progress_callback: ProgressArg = None
    ) -> list[GeneratedAsset]:
        return self._bracketed("multi_view_image", self.generate_angles, request, progress_callback)

    def upscale_image_with_progress(
        self, request: ImageUpscaleRequest, progress_callback: ProgressArg = None
    ) -> GeneratedAsset:
        return self._bracketed(UPSCALE_TASK, self.upscale_image, request, progress_callback)

    # ---- generic dispatch used by the manager ---------------------------------------------
    def normalize(self, task: str, request: Any) -> Any:
        """Apply the task's ``normalize_*_request`` hook."""
        return getattr(self, f"normalize_{TASK_METHODS[task]}_request")(request)

    def run(self, task: str, request: Any, progress_callback: ProgressArg = None) -> Any:
        """Run one normalized request (see :meth:`normalize`) through the task's ``*_with_progress`` form."""
        return getattr(self, f"{TASK_METHODS[task]}_with_progress")(request, as_reporter(progress_callback, task))

    async def arun(self, task: str, request: Any, progress_callback: ProgressArg = None) -> Any:
        """Async :meth:`run`. Default: a worker thread; HTTP backends override it with native async."""
        return await in_worker_thread(self.run, task, request, progress_callback)

    def run_batch(self, task: str, requests: Sequence[Any], progress_callback: ProgressArg = None) -> list[Any]:
        """Run several requests of one task; a failure keeps the items already made.

        Backends with a native batch (an HTTP ``n`` parameter) override this.
        """
        results: list[Any] = []
        for index, request in enumerate(requests):
            try:
                results.append(self.run(task, request, progress_callback))
            except Exception as exc:
                raise batch_failure(task, requests, index, results, exc) from exc
        return results

    async def arun_batch(self, task: str, requests: Sequence[Any], progress_callback: ProgressArg = None) -> list[Any]:
        return await in_worker_thread(self.run_batch, task, requests, progress_callback)

    # ---- helpers ---------------------------------------------------------------------------
    def __enter__(self) -> VisionBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> VisionBackend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        config = getattr(self, "config", None)
        return f"{type(self).__name__}({'config=' + repr(config) if config is not None else ''})"

    def _implements(self, task: str) -> bool:
        method = TASK_METHODS[task]
        if method in ("generate_image", "edit_image"):
            return True
        own = getattr(type(self), method)
        progress = getattr(type(self), f"{method}_with_progress")
        return own is not getattr(VisionBackend, method) or progress is not getattr(
            VisionBackend, f"{method}_with_progress"
        )

    def _unsupported(self, task: str) -> CapabilityNotSupportedError:
        supported = ", ".join(self.get_capabilities().supported_tasks) or "none"
        hint = self.capability_hint(task)
        return CapabilityNotSupportedError(
            f"the {self.name} backend does not support {task} (it supports: {supported})"
            + (f"; {hint}" if hint else "")
        )

    def _bracketed(self, task: str, method: Callable[[Any], Any], request: Any, progress_callback: ProgressArg) -> Any:
        reporter = as_reporter(progress_callback, task)
        reporter.start(total_steps=getattr(request, "steps", None))
        result = method(request)
        reporter.end(total_steps=getattr(request, "steps", None))
        return result


async def in_worker_thread(
    func: Callable[[str, Any, ProgressReporter], Any], task: str, work: Any, progress_callback: ProgressArg
) -> Any:
    """Await ``func(task, work, reporter)`` run in a worker thread; cancelling the awaiting task cancels the run.

    Why: asyncio cannot stop a thread, so without this an abandoned call (a server client that hung
    up, a ``wait_for`` that timed out) would keep the engine busy until the end. On cancellation the
    run's cancel event is set (one is made when the caller gave none), which stops Diffusers at the
    next step and kills sd-cli, exactly like a caller's own cancel.
    """
    reporter = as_reporter(progress_callback, task)
    if reporter.cancel_event is None:
        reporter.cancel_event = threading.Event()
    try:
        return await asyncio.to_thread(func, task, work, reporter)
    except asyncio.CancelledError:
        reporter.cancel_event.set()
        raise


def batch_failure(
    task: str, requests: Sequence[Any], index: int, results: list[Any], cause: BaseException
) -> BatchGenerationError:
    """The error for batch item ``index`` failing, carrying the ``results`` already made."""
    return BatchGenerationError(
        f"{task} batch item {index + 1} of {len(requests)} failed after {len(results)} item(s) were made: {cause}",
        results=results,
        failed_index=index,
        seed=getattr(requests[index], "seed", None),
    )


def replace_request(request: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for requests; ``extra`` changes merge into the existing dict."""
    extra = changes.pop("extra", None)
    if extra is not None:
        changes["extra"] = {**request.extra, **extra}
    return dataclasses.replace(request, **changes)


__all__ = ["REQUEST_TYPES", "TASK_METHODS", "UPSCALE_TASK", "VisionBackend", "batch_failure", "replace_request"]
