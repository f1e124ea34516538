"""Where a job meets an engine: a :class:`LocalRunner` holds one :class:`VisionManager`.

The job queue only knows the :class:`Runner` protocol, so a deployment can swap where the work
runs (Ray Serve replicas, say) without touching routes, records or events.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..backends.base_backend import UPSCALE_TASK
from ..types import GeneratedAsset, ProgressEvent, ProviderAdapterInfo, VisionBackendCapabilities

#: task -> (manager batch method, positional fields). Each takes ``count=``; ``multi_view_image``
#: makes one asset per angle instead, and an upscale one image.
_TASK_CALLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "text_to_image": ("agenerate_image_batch", ("prompt",)),
    "image_to_image": ("aedit_image_batch", ("prompt", "image")),
    "text_to_video": ("agenerate_video_batch", ("prompt",)),
    "image_to_video": ("aimage_to_video_batch", ("image",)),
    "multi_view_image": ("agenerate_angles", ("prompt",)),
    UPSCALE_TASK: ("aupscale_image", ("image",)),
}

#: Tasks a job may name.
JOB_TASKS: tuple[str, ...] = tuple(_TASK_CALLS)


class Runner(Protocol):
    """What the job queue needs from whatever runs the work."""

    #: The served model ids; the first is the default (a request that names none gets it).
    model_ids: tuple[str, ...]

    async def start(self) -> None: ...

    def capabilities(self, model: str | None = None) -> VisionBackendCapabilities: ...

    async def adapters(self, model: str | None = None) -> list[ProviderAdapterInfo]:
        """The LoRA adapters ``model``'s backend lists: the only ones requests may use."""
        ...

    async def run(
        self,
        task: str,
        fields: dict[str, Any],
        count: int,
        on_progress: Callable[[ProgressEvent], None],
        cancel: threading.Event,
        model: str | None = None,
    ) -> list[GeneratedAsset]: ...

    async def close(self) -> None: ...


class LocalRunner:
    """Runs jobs on a manager in this process: HTTP backends natively async, local engines in a
    worker thread (the manager's async twins decide), so the event loop keeps answering."""

    def __init__(self, manager: Any, model_id: str, *, preload: bool = False):
        self.manager = manager
        self.model_ids = (model_id,)
        self._preload = preload

    def __repr__(self) -> str:
        return f"LocalRunner(model={self.model_ids[0]!r}, backend={self.manager.backend!r})"

    async def start(self) -> None:
        if self._preload:
            await asyncio.to_thread(self.manager.preload)

    def capabilities(self, model: str | None = None) -> VisionBackendCapabilities:
        return self.manager.backend.get_capabilities()

    async def adapters(self, model: str | None = None) -> list[ProviderAdapterInfo]:
        return await asyncio.to_thread(self.manager.list_provider_adapters)  # a folder walk, a cache scan

    async def run(
        self,
        task: str,
        fields: dict[str, Any],
        count: int,
        on_progress: Callable[[ProgressEvent], None],
        cancel: threading.Event,
        model: str | None = None,  # one model here: the one it was built with
    ) -> list[GeneratedAsset]:
        method, positional = _TASK_CALLS[task]
        fields = dict(fields)
        args = [fields.pop(name, None) for name in positional]
        call = getattr(self.manager, method)
        if task == "multi_view_image":
            return list(await call(*args, on_progress=on_progress, cancel=cancel, **fields))
        if task == UPSCALE_TASK:
            return [await call(*args, on_progress=on_progress, cancel=cancel, **fields)]
        return list(await call(*args, count=count, on_progress=on_progress, cancel=cancel, **fields))

    async def close(self) -> None:
        await self.manager.aclose()


__all__ = ["JOB_TASKS", "LocalRunner", "Runner"]
