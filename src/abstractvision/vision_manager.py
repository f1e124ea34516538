"""The one small API users call: validate, gate, build a frozen request, run it on a backend.

The manager knows no engine. For every call it:

1. turns keyword arguments into the task's request dataclass (unknown keywords go to ``extra``),
   reading image inputs given as bytes, file paths or artifact refs;
2. rejects bad input (:mod:`abstractvision.validation`) and tasks or options the backend or the
   registry model cannot do, before any backend work;
3. lets the backend normalize the request (model defaults and limits), once, then runs the
   normalized request through the backend's ``*_with_progress`` hook with a
   :class:`~abstractvision.progress.ProgressReporter`. Each input image is decoded once, while
   validating, and travels as an :class:`~abstractvision.media.InspectedImage` carrying its size and
   mode, so neither the backend's hooks nor its run decode it again;
4. stamps provenance into the asset's metadata (and into PNG files), strips anything secret,
   and stores it when a store is configured (returning the artifact ref instead of the asset).

It holds no per-call state, so one manager may be shared by threads.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .artifacts import MediaStore, is_artifact_ref
from .backends.base_backend import REQUEST_TYPES, UPSCALE_TASK, VisionBackend
from .errors import BackendNotConfiguredError, BatchGenerationError, InvalidRequestError
from .lora import describe as describe_adapters
from .progress import ProgressReporter
from .redaction import is_secret_name
from .types import GeneratedAsset, ProgressCallback, ProviderAdapterInfo, ProviderModelInfo
from .validation import gate_capabilities, plan_seeds, validate_request

#: Request fields that carry images, read from bytes / path / artifact ref.
_IMAGE_FIELDS = ("image", "mask", "control_image", "reference_image")


def scrub_secrets(value: Any) -> Any:
    """Copy of ``value`` without keys that look like credentials (recursively): metadata reaches disk and logs."""
    if isinstance(value, dict):
        return {k: scrub_secrets(v) for k, v in value.items() if not is_secret_name(k)}
    if isinstance(value, (list, tuple)):
        return [scrub_secrets(v) for v in value]
    return value


def _async_twin(method: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The ``a``-prefixed twin of a task method: it runs ``method`` itself (its signature, defaults
    and checks) with ``_run``/``_run_batch`` routed to the backend's async path, so the sync and
    async forms cannot drift apart."""

    @functools.wraps(method)
    async def twin(self: VisionManager, *args: Any, **kwargs: Any) -> Any:
        return await method(_AsyncRoute(self), *args, **kwargs)

    twin.__name__ = f"a{method.__name__}"
    twin.__qualname__ = f"{method.__qualname__.rpartition('.')[0]}.{twin.__name__}"
    twin.__doc__ = f"Async :meth:`{method.__name__}` (the backend's ``arun``: native async for HTTP)."
    return twin


class _AsyncRoute:
    """A manager as its task methods see it from an async twin: running returns an awaitable."""

    def __init__(self, manager: VisionManager):
        self._manager = manager

    def _run(self, *args: Any) -> Coroutine[Any, Any, Any]:
        return self._manager._arun(*args)

    def _run_batch(self, *args: Any) -> Coroutine[Any, Any, Any]:
        return self._manager._arun_batch(*args)


class VisionManager:
    """Generate and edit images (and videos, multi-view images) through any :class:`VisionBackend`.

    ``model_id`` opts into registry gating: a request for a task the registry says the model
    cannot do is refused before the backend runs. With ``store`` the methods return artifact refs.
    """

    def __init__(
        self,
        backend: VisionBackend | None = None,
        store: MediaStore | None = None,
        model_id: str | None = None,
        registry: Any = None,
    ):
        self.backend = backend
        self.store = store
        self.model_id = model_id
        self._registry = registry
        self._registry_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VisionManager(backend={self.backend!r}, store={self.store!r}, model_id={self.model_id!r})"

    @property
    def registry(self):
        """The capability registry, loaded on first use (the packaged file unless one was given)."""
        if self._registry is None:
            with self._registry_lock:
                if self._registry is None:
                    from .model_capabilities import VisionModelCapabilitiesRegistry

                    self._registry = VisionModelCapabilitiesRegistry()
        return self._registry

    # ---- public task methods ----------------------------------------------------------------
    def generate_image(
        self,
        prompt: str,
        *,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        **params: Any,
    ) -> Any:
        """text_to_image. ``params``: negative_prompt, width, height, seed, steps, guidance_scale,
        control_image, control_strength, lora_adapters (:class:`~abstractvision.LoRAAdapterSpec`,
        mappings or ``PATH_OR_ID[:SCALE]`` words), extra; any other keyword goes to ``extra``."""
        return self._run("text_to_image", {"prompt": prompt, **params}, on_progress, cancel)

    def edit_image(
        self,
        prompt: str,
        image: Any,
        *,
        mask: Any = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        **params: Any,
    ) -> Any:
        """image_to_image; with ``mask`` (white = repaint) inpainting. Images: bytes, path or ref."""
        return self._run(
            "image_to_image", {"prompt": prompt, "image": image, "mask": mask, **params}, on_progress, cancel
        )

    def generate_video(
        self,
        prompt: str,
        *,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        **params: Any,
    ) -> Any:
        """text_to_video. ``params``: negative_prompt, width, height, fps, num_frames, seed, steps, ..."""
        return self._run("text_to_video", {"prompt": prompt, **params}, on_progress, cancel)

    def image_to_video(
        self,
        image: Any,
        prompt: str | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        **params: Any,
    ) -> Any:
        """image_to_video: animate ``image`` (bytes, path or ref), optionally guided by ``prompt``."""
        return self._run("image_to_video", {"image": image, "prompt": prompt, **params}, on_progress, cancel)

    def generate_angles(
        self,
        prompt: str,
        *,
        reference_image: Any = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        **params: Any,
    ) -> list[Any]:
        """multi_view_image: one asset per angle (``angles=`` defaults to front/three_quarter/side/back)."""
        if "angles" in params and isinstance(params["angles"], list):
            params["angles"] = tuple(params["angles"])
        fields = {"prompt": prompt, "reference_image": reference_image, **params}
        return self._run("multi_view_image", fields, on_progress, cancel)

    def upscale_image(
        self,
        image: Any,
        *,
        scale: float | None = None,
        resolution: Any = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        **params: Any,
    ) -> Any:
        """Upscale ``image`` by ``scale`` or to ``resolution`` (backends that cannot upscale refuse)."""
        fields = {"image": image, "scale": scale, "resolution": resolution, **params}
        return self._run(UPSCALE_TASK, fields, on_progress, cancel)

    # ---- batches ------------------------------------------------------------------------------
    def generate_image_batch(
        self, prompt: str, *, count: int | None = None, seeds: Sequence[int] | None = None, **params: Any
    ) -> list[Any]:
        """``count`` images (or one per seed in ``seeds``). A failure raises
        :class:`BatchGenerationError` whose ``results`` keep the items already made."""
        return self._run_batch("text_to_image", {"prompt": prompt, **params}, count, seeds)

    def edit_image_batch(
        self,
        prompt: str,
        image: Any,
        *,
        mask: Any = None,
        count: int | None = None,
        seeds: Sequence[int] | None = None,
        **params: Any,
    ) -> list[Any]:
        return self._run_batch(
            "image_to_image", {"prompt": prompt, "image": image, "mask": mask, **params}, count, seeds
        )

    def generate_video_batch(
        self, prompt: str, *, count: int | None = None, seeds: Sequence[int] | None = None, **params: Any
    ) -> list[Any]:
        return self._run_batch("text_to_video", {"prompt": prompt, **params}, count, seeds)

    def image_to_video_batch(
        self,
        image: Any,
        prompt: str | None = None,
        *,
        count: int | None = None,
        seeds: Sequence[int] | None = None,
        **params: Any,
    ) -> list[Any]:
        return self._run_batch("image_to_video", {"image": image, "prompt": prompt, **params}, count, seeds)

    def generate_angles_batch(
        self,
        prompt: str,
        *,
        reference_image: Any = None,
        count: int | None = None,
        seeds: Sequence[int] | None = None,
        **params: Any,
    ) -> list[Any]:
        fields = {"prompt": prompt, "reference_image": reference_image, **params}
        return self._run_batch("multi_view_image", fields, count, seeds)

    # ---- async twins: the same arguments and checks, run on the backend's async path ------------
    agenerate_image = _async_twin(generate_image)
    aedit_image = _async_twin(edit_image)
    agenerate_video = _async_twin(generate_video)
    aimage_to_video = _async_twin(image_to_video)
    agenerate_angles = _async_twin(generate_angles)
    aupscale_image = _async_twin(upscale_image)
    agenerate_image_batch = _async_twin(generate_image_batch)
    aedit_image_batch = _async_twin(edit_image_batch)
    agenerate_video_batch = _async_twin(generate_video_batch)
    aimage_to_video_batch = _async_twin(image_to_video_batch)
    agenerate_angles_batch = _async_twin(generate_angles_batch)

    # ---- catalog and lifecycle ----------------------------------------------------------------
    def list_provider_models(self, task: str | None = None) -> list[ProviderModelInfo]:
        """The backend's own catalog, optionally only models fit for ``task``. Selects nothing."""
        if task is not None and task not in REQUEST_TYPES:
            raise InvalidRequestError(f"task: unknown task {task!r}; known: {', '.join(REQUEST_TYPES)}", field="task")
        return self._require_backend().list_provider_models(task=task)

    def list_provider_adapters(self) -> list[ProviderAdapterInfo]:
        """The LoRA adapters the backend can use (files in its adapter folder, LoRA repos in the HF
        cache). Selects nothing: pass an ``id`` as a :class:`~abstractvision.LoRAAdapterSpec` source."""
        return self._require_backend().list_provider_adapters()

    def preload(self) -> None:
        self._require_backend().preload()

    def unload(self) -> None:
        if self.backend is not None:
            self.backend.unload()

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()

    async def aclose(self) -> None:
        """:meth:`close` from async code: the backend's async clients are closed on the running loop."""
        if self.backend is not None:
            await self.backend.aclose()

    def __enter__(self) -> VisionManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> VisionManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ---- the pipeline -------------------------------------------------------------------------
    def _require_backend(self) -> VisionBackend:
        if self.backend is None:
            raise BackendNotConfiguredError(
                "no backend configured: pass backend= to VisionManager, e.g. "
                "VisionManager(backend=OpenAICompatibleVisionBackend(config=OpenAICompatibleBackendConfig("
                "base_url=...))); the CLI takes --provider / ABSTRACTVISION_PROVIDER"
            )
        return self.backend

    def _build_request(self, task: str, fields: dict[str, Any]) -> Any:
        request_type = REQUEST_TYPES[task]
        names = {f.name for f in dataclasses.fields(request_type)}
        required = {  # kept even when None, so validation (not the dataclass) names the missing field
            f.name
            for f in dataclasses.fields(request_type)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        extra = fields.pop("extra", None)
        if extra is None:
            extra = {}
        elif not isinstance(extra, dict):
            raise InvalidRequestError(f"extra: must be a dict, got {type(extra).__name__}", field="extra")
        extra = dict(extra)
        known: dict[str, Any] = {}
        for name, value in fields.items():
            if name in names:
                known[name] = value
            elif value is not None:
                extra[name] = value
        for name in _IMAGE_FIELDS:
            if known.get(name) is not None:
                known[name] = self._read_image(known[name], name)
        return request_type(**{k: v for k, v in known.items() if v is not None or k in required}, extra=extra)

    def _read_image(self, value: Any, field: str) -> bytes:
        if is_artifact_ref(value):
            if self.store is None:
                raise InvalidRequestError(f"{field}: got an artifact ref but this manager has no store", field=field)
            return self.store.load_bytes(value)
        from .media import read_input_bytes

        return read_input_bytes(value, field)

    def _prepare(
        self, task: str, fields: dict[str, Any], on_progress: Any, cancel: Any
    ) -> tuple[Any, ProgressReporter]:
        backend = self._require_backend()
        if on_progress is not None and not callable(on_progress):
            raise InvalidRequestError("on_progress: must be callable", field="on_progress")
        if cancel is not None and not hasattr(cancel, "is_set"):
            raise InvalidRequestError("cancel: must be a threading.Event (or have is_set())", field="cancel")
        request = self._build_request(task, fields)
        caps = backend.get_capabilities()
        request = validate_request(task, request, caps)  # image fields now carry their decoded facts
        if self.model_id and task != UPSCALE_TASK:
            self.registry.require_support(self.model_id, task)
        gate_capabilities(task, request, caps, backend.name, backend.capability_hint(task))
        request = backend.normalize(task, request)
        return request, ProgressReporter(task, on_progress, cancel)

    def _finish(self, task: str, result: Any, started: float, request: Any) -> Any:
        if isinstance(result, list):
            return [self._finish(task, item, started, request) for item in result]
        if not isinstance(result, GeneratedAsset):
            raise TypeError(f"{type(self.backend).__name__} returned {type(result).__name__}, not GeneratedAsset")
        from .media import embed_png_metadata

        metadata = {"backend": self.backend.name, "task": task, **result.metadata}
        if getattr(request, "lora_adapters", None):  # what made this picture, whichever engine ran it
            metadata.setdefault("lora_adapters", describe_adapters(request.lora_adapters))
        if self.model_id and "model" not in metadata:
            metadata["model"] = self.model_id
        metadata.setdefault("elapsed_s", round(time.perf_counter() - started, 4))
        metadata = scrub_secrets(metadata)
        data = embed_png_metadata(result.data, metadata) if result.mime_type == "image/png" else result.data
        asset = dataclasses.replace(result, data=data, metadata=metadata)
        if self.store is None:
            return asset
        return self.store.store_bytes(asset.data, content_type=asset.mime_type, metadata=asset.metadata)

    def _run(self, task: str, fields: dict[str, Any], on_progress: Any, cancel: Any) -> Any:
        request, reporter = self._prepare(task, fields, on_progress, cancel)
        started = time.perf_counter()
        reporter.raise_if_cancelled()
        return self._finish(task, self.backend.run(task, request, reporter), started, request)

    async def _arun(self, task: str, fields: dict[str, Any], on_progress: Any, cancel: Any) -> Any:
        request, reporter = self._prepare(task, fields, on_progress, cancel)
        started = time.perf_counter()
        reporter.raise_if_cancelled()
        return self._finish(task, await self.backend.arun(task, request, reporter), started, request)

    def _prepare_batch(self, task: str, fields: dict[str, Any], count: Any, seeds: Any):
        on_progress, cancel = fields.pop("on_progress", None), fields.pop("cancel", None)
        capabilities = self._require_backend().get_capabilities()
        plan = plan_seeds(count, seeds, fields.get("seed"), capabilities.max_seed, capabilities.supports_seed)
        request, reporter = self._prepare(task, fields, on_progress, cancel)
        # A planned seed replaces the request's; ``None`` (one item, or a backend that takes none) keeps
        # what the backend's normalize hook chose (sd.cpp draws and records a seed there).
        requests = [request if seed is None else dataclasses.replace(request, seed=seed) for seed in plan]
        return requests, reporter, time.perf_counter()

    @contextmanager
    def _keeping_partial(self, task: str, requests: list[Any], started: float) -> Iterator[None]:
        """On a failed batch, finish (and store) the items it already made, so none is lost."""
        try:
            yield
        except BatchGenerationError as exc:
            exc.results = self._finish(task, _with_seeds(exc.results, requests), started, requests[0])
            raise

    def _run_batch(self, task: str, fields: dict[str, Any], count: Any, seeds: Any) -> list[Any]:
        requests, reporter, started = self._prepare_batch(task, fields, count, seeds)
        with self._keeping_partial(task, requests, started):
            results = self.backend.run_batch(task, requests, reporter)
        return self._finish(task, _with_seeds(results, requests), started, requests[0])

    async def _arun_batch(self, task: str, fields: dict[str, Any], count: Any, seeds: Any) -> list[Any]:
        requests, reporter, started = self._prepare_batch(task, fields, count, seeds)
        with self._keeping_partial(task, requests, started):
            results = await self.backend.arun_batch(task, requests, reporter)
        return self._finish(task, _with_seeds(results, requests), started, requests[0])


def _with_seeds(results: list[Any], requests: list[Any]) -> list[Any]:
    """Each batch result records the seed it was asked for, where its backend did not say (and did
    not say it ignored seeds): a batch's results must tell which seed made which picture."""
    marked = []
    for result, request in zip(results, requests, strict=False):
        metadata = getattr(result, "metadata", None)
        seed = getattr(request, "seed", None)
        if metadata is None or seed is None or "seed" in metadata or "seed" in metadata.get("ignored_params", ()):
            marked.append(result)
        else:
            marked.append(dataclasses.replace(result, metadata={**metadata, "seed": seed}))
    return marked


__all__ = ["VisionManager", "scrub_secrets"]
