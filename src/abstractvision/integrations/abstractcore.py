"""AbstractCore's vision capability, served by abstractvision.

AbstractCore (``llm.vision``) calls a capability object with its ``VisionCapability`` protocol:
``t2i``/``i2i``/``t2v``/``i2v`` and their ``*_batch`` forms, ``upscale_image``, catalog and
residency methods. :class:`AbstractVisionCapability` maps each onto a :class:`VisionManager` call,
so validation, gating, progress and provenance are the library's own. Host specifics stay here:

* routing arguments ``provider=``/``model=`` pick the backend and model and are never sent on;
* inputs may be bytes, a path or an artifact ref; with ``artifact_store`` outputs are refs that
  carry ``run_id``, ``tags`` and ``metadata`` (which never reaches the provider);
* residency answers honestly for remote services (nothing is resident) instead of raising;
* ``lora_adapters=`` on ``t2i``/``i2i`` (specs, mappings or ``PATH_OR_ID[:SCALE]`` words) goes to the
  manager as it is; ``list_provider_adapters`` lists what the backend can use.

Importing this module loads no engine; backends are built from the owner's config on creation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import BackendNotConfiguredError, BatchGenerationError
from ..vision_manager import VisionManager
from ._abstractcore_config import (
    ACCEPTED_BACKENDS,
    REMOTE_BACKENDS,
    VisionBackendPlan,
    owner_config_of,
    resolve_backend_plan,
)
from ._abstractcore_tools import VisionTool, make_vision_tools
from ._artifact_io import as_media_store, deliver, load_input

DEFAULT_BACKEND_ID = "abstractvision:openai"

#: The tasks whose calls take ``lora_adapters``.
_LORA_TASKS = ("text_to_image", "image_to_image")

#: Model names that mean "the configured default" (AbstractCore's server sends them).
_DEFAULT_MODEL_NAMES = {"", "default"}


class AbstractVisionCapability:
    """AbstractCore ``VisionCapability`` over abstractvision backends (see the module docstring).

    One manager per (backend, model) is built on first use and kept, so a local pipeline loads
    once; ``unload_resident_model`` releases it.
    """

    def __init__(self, plan: VisionBackendPlan, *, backend_id: str = DEFAULT_BACKEND_ID):
        self.backend_id = backend_id
        self._plan = plan
        self._managers: dict[tuple[str, str | None], VisionManager] = {}
        self._resident: dict[tuple[str, str | None], float] = {}
        self._lock = threading.Lock()
        self.manager(None, None)  # build the default backend now: a missing extra fails at creation

    @classmethod
    def from_owner(cls, owner: Any, *, backend_id: str = DEFAULT_BACKEND_ID) -> AbstractVisionCapability:
        """Build from the host's config (``create_llm(..., vision_backend=..., ...)``) over the environment."""
        return cls(resolve_backend_plan(owner_config_of(owner)), backend_id=backend_id)

    def __repr__(self) -> str:
        return f"AbstractVisionCapability(backend_id={self.backend_id!r}, provider={self._plan.provider!r})"

    # ---- routing ------------------------------------------------------------------------------
    def _route_key(self, provider: Any, model: Any) -> tuple[str, str | None]:
        name = self._plan.provider
        if provider is not None and str(provider).strip():
            raw = str(provider).strip().lower()
            if raw not in ("abstractvision", self.backend_id):
                name = _provider_name(raw.removeprefix("abstractvision:"))
        chosen = None if model is None or str(model).strip() in _DEFAULT_MODEL_NAMES else str(model).strip()
        if name == self._plan.provider and chosen == self._plan.model:
            chosen = None
        return name, chosen

    def manager(self, provider: Any = None, model: Any = None) -> VisionManager:
        """The :class:`VisionManager` serving a route (default: the configured backend and model).

        For hosts that want the library's own API (async, ``generate_angles``, agent tools) on the
        backend AbstractCore configured.
        """
        key = self._route_key(provider, model)
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                plan = self._plan if key[0] == self._plan.provider else self._plan.for_provider(key[0])
                manager = VisionManager(backend=plan.build(key[1]))
                self._managers[key] = manager
            return manager

    # ---- one call, one output --------------------------------------------------------------
    def _call(
        self,
        method: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        image_fields: Sequence[str] = (),
    ) -> Any:
        """Route, read inputs, run ``VisionManager.<method>`` and deliver bytes or refs."""
        store = as_media_store(kwargs.pop("artifact_store", None))
        output = {name: kwargs.pop(name, None) for name in ("run_id", "tags", "metadata")}
        manager = self.manager(kwargs.pop("provider", None), kwargs.pop("model", None))
        args = [load_input(value, "image", store) if i in image_fields else value for i, value in enumerate(args)]
        for name in image_fields:
            if isinstance(name, str) and kwargs.get(name) is not None:
                kwargs[name] = load_input(kwargs[name], name, store)
        try:
            result = getattr(manager, method)(*args, **kwargs)
        except BatchGenerationError as exc:
            exc.results = [deliver(asset, store, **output) for asset in exc.results]
            raise
        if isinstance(result, list):
            return [deliver(asset, store, **output) for asset in result]
        return deliver(result, store, **output)

    # ---- VisionCapability: generation ------------------------------------------------------
    def t2i(self, prompt: str, **kwargs: Any) -> Any:
        """Text to image: bytes, or an artifact ref with ``artifact_store``."""
        return self._call("generate_image", [prompt], kwargs)

    def t2i_batch(self, prompt: str, *, count: int = 1, seeds: Sequence[int] | None = None, **kwargs: Any) -> list:
        """``count`` images, or one per seed when ``seeds`` is given (the seeds decide the count)."""
        return self._call("generate_image_batch", [prompt], {**kwargs, "count": count, "seeds": seeds})

    def i2i(self, prompt: str, image: Any, **kwargs: Any) -> Any:
        """Edit ``image`` (bytes, path or ref); with ``mask=`` inpaint."""
        return self._call("edit_image", [prompt, image], kwargs, image_fields=(1, "mask"))

    def i2i_batch(
        self, prompt: str, image: Any, *, count: int = 1, seeds: Sequence[int] | None = None, **kwargs: Any
    ) -> list:
        kwargs = {**kwargs, "count": count, "seeds": seeds}
        return self._call("edit_image_batch", [prompt, image], kwargs, image_fields=(1, "mask"))

    def t2v(self, prompt: str, **kwargs: Any) -> Any:
        return self._call("generate_video", [prompt], kwargs)

    def t2v_batch(self, prompt: str, *, count: int = 1, seeds: Sequence[int] | None = None, **kwargs: Any) -> list:
        return self._call("generate_video_batch", [prompt], {**kwargs, "count": count, "seeds": seeds})

    def i2v(self, image: Any, *, prompt: str | None = None, **kwargs: Any) -> Any:
        return self._call("image_to_video", [image, prompt], kwargs, image_fields=(0,))

    def i2v_batch(
        self,
        image: Any,
        *,
        prompt: str | None = None,
        count: int = 1,
        seeds: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> list:
        kwargs = {**kwargs, "count": count, "seeds": seeds}
        return self._call("image_to_video_batch", [image, prompt], kwargs, image_fields=(0,))

    def upscale_image(self, image: Any, **kwargs: Any) -> Any:
        """Upscale by ``scale=`` or to ``resolution=`` on a backend with an upscaler (owner keys
        ``vision_diffusers_upscaler``, ``vision_sdcpp_upscale_model``); others refuse, naming the setting."""
        return self._call("upscale_image", [image], kwargs, image_fields=(0,))

    # ---- VisionCapability: catalog ---------------------------------------------------------
    def list_provider_models(self, *, task: str | None = None) -> list[dict[str, Any]]:
        """The configured backend's catalog as plain dicts, only models fit for ``task`` when given."""
        provider = self._plan.provider
        models = self.manager(None, None).list_provider_models(task=task)
        out = []
        for info in models:
            tasks = list(info.capabilities)
            if task is not None and tasks and task not in tasks:
                continue
            record = {"id": info.id, "model": info.id, "provider": provider, "backend_id": self.backend_id}
            record.update({"tasks": tasks, "object": info.object, "created": info.created, "owned_by": info.owned_by})
            out.append({k: v for k, v in record.items() if v is not None})
        return out

    def list_provider_adapters(
        self, *, model: str | None = None, task: str | None = None, provider: str | None = None
    ) -> list[dict[str, Any]]:
        """The LoRA adapters the routed backend can use, as plain dicts (``id`` is what ``lora_adapters``
        takes as ``source``); none for a task adapters do not apply to (only images take them)."""
        if task is not None and task not in _LORA_TASKS:
            return []
        route = self._route_key(provider, model)
        out = []
        for info in self.manager(*route).list_provider_adapters():
            record = {"id": info.id, "provider": route[0], "backend_id": self.backend_id, "path": info.path}
            record.update(weight_name=info.weight_name, size_bytes=info.size_bytes, compatible_tasks=list(_LORA_TASKS))
            out.append({k: v for k, v in record.items() if v is not None})
        return out

    def available_providers(self, *, task: str | None = None) -> dict[str, Any]:
        """The backends this plugin can route to, and the one configured (AbstractCore's catalog)."""
        return {
            "backend_id": self.backend_id,
            "task": task,
            "providers": list(ACCEPTED_BACKENDS),
            "available_providers": [self._plan.provider],
            "selected_provider": self._plan.provider,
        }

    # ---- VisionCapability: residency -------------------------------------------------------
    def load_resident_model(self, request: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Load the requested (or default) model into memory and keep it there.

        A remote service holds nothing in this process: the answer says so (``loaded: False``).
        """
        request = dict(request or {})
        key = self._route_key(request.get("provider"), request.get("model"))
        manager = self.manager(*key)
        if key[0] in REMOTE_BACKENDS:
            return self._record(key, loaded=False, reason="a remote service: nothing is resident in this process")
        loaded_new = key not in self._resident
        manager.preload()
        with self._lock:
            self._resident.setdefault(key, time.time())
        return {**self._record(key, loaded=True), "loaded_new": loaded_new}

    def list_loaded_models(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Models loaded with :meth:`load_resident_model` and not unloaded since."""
        filters = dict(filters or {})
        with self._lock:
            keys = list(self._resident)
        records = [self._record(key, loaded=True) for key in keys]
        return [record for record in records if _matches(record, filters)]

    def list_resident_models(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.list_loaded_models(filters)

    def unload_resident_model(self, request: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Release the requested (or default) model; unloading twice is harmless."""
        request = dict(request or {})
        key = self._route_key(request.get("provider"), request.get("model"))
        with self._lock:
            manager = self._managers.get(key)
            was_resident = self._resident.pop(key, None) is not None
        if key[0] in REMOTE_BACKENDS:
            record = self._record(key, loaded=False, reason="a remote service: nothing is resident in this process")
            return {**record, "unloaded": False}
        if manager is not None:
            manager.unload()
        return {**self._record(key, loaded=False), "unloaded": was_resident}

    def _record(self, key: tuple[str, str | None], *, loaded: bool, reason: str | None = None) -> dict[str, Any]:
        provider, model = key
        remote = provider in REMOTE_BACKENDS
        record = {
            "runtime_id": f"{self.backend_id}/{provider}/{model or 'default'}",
            "capability": "vision",
            "backend_id": self.backend_id,
            "provider": provider,
            "model": model or self._plan.model or "default",
            "loaded": loaded,
            "state": "loaded" if loaded else ("configured" if remote else "not_loaded"),
            "scope": "remote" if remote else "local",
        }
        if loaded:
            record["loaded_at"] = int(self._resident.get(key, time.time()))
        if reason:
            record["reason"] = reason
        return record


def _provider_name(raw: str) -> str:
    from ..backends import canonical_backend_name

    try:
        return canonical_backend_name(raw)
    except BackendNotConfiguredError:
        raise BackendNotConfiguredError(
            f"provider={raw!r} is not a vision backend; accepted values: {', '.join(ACCEPTED_BACKENDS)}"
        ) from None


def _matches(record: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    for name in ("provider", "model", "runtime_id"):
        wanted = filters.get(name)
        if wanted and str(wanted) != str(record.get(name)):
            return False
    return True


def vision_capability_factory(backend_id: str) -> Callable[[Any], AbstractVisionCapability]:
    """The factory AbstractCore calls once per backend id with its owner (the LLM instance)."""

    def factory(owner: Any) -> AbstractVisionCapability:
        return AbstractVisionCapability.from_owner(owner, backend_id=backend_id)

    return factory


__all__ = [
    "AbstractVisionCapability",
    "DEFAULT_BACKEND_ID",
    "VisionTool",
    "make_vision_tools",
    "vision_capability_factory",
]
