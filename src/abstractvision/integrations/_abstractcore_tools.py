"""Agent tools: generate and edit images (and videos) and answer with artifact refs.

Why refs: an LLM that receives a base64 image in a tool result spends its context on it; a ref
(``{"$artifact": id, "content_type", ...}``) is a few dozen tokens, and the id can be handed to
the next tool (edit this image, animate it). Each tool is a :class:`VisionTool` shaped like
AbstractCore's ``ToolDefinition`` (``name``, ``description``, ``parameters``, ``function``,
``to_dict()``), so AbstractCore's registry and ``generate(tools=...)`` accept it, while nothing
here imports AbstractCore.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..artifacts import MediaStore, is_artifact_ref
from ..errors import InvalidRequestError
from ..vision_manager import VisionManager
from ._artifact_io import deliver

_OPTIONAL_PARAMS = {
    "negative_prompt": {"type": "string", "description": "What the result must not show."},
    "width": {"type": "integer", "description": "Width in pixels."},
    "height": {"type": "integer", "description": "Height in pixels."},
    "seed": {"type": "integer", "description": "Seed for a reproducible result."},
    "steps": {"type": "integer", "description": "Denoising steps (local models)."},
    "guidance_scale": {"type": "number", "description": "How closely to follow the prompt."},
    "num_frames": {"type": "integer", "description": "Number of video frames."},
    "fps": {"type": "integer", "description": "Video frames per second."},
}
_PROMPT = {"type": "string", "description": "What to create, in plain words."}
_IMAGE = {"type": "string", "description": "The input image: an artifact id from an earlier result, or a file path."}
_MASK = {"type": "string", "description": "Optional mask (white = repaint): an artifact id or a file path."}


@dataclass
class VisionTool:
    """One agent tool. ``parameters`` maps each argument to its JSON schema (AbstractCore's
    convention: an argument without ``default`` is required); :meth:`json_schema` gives the
    object schema OpenAI-style function calling expects."""

    name: str
    description: str
    parameters: dict[str, dict[str, Any]]
    function: Callable[..., dict[str, Any]]
    when_to_use: str | None = None
    tags: list[str] = field(default_factory=lambda: ["vision"])

    @property
    def required(self) -> list[str]:
        return sorted(name for name, schema in self.parameters.items() if "default" not in schema)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.when_to_use:
            out["when_to_use"] = self.when_to_use
        out["parameters"] = self.parameters
        if self.required:
            out["required_args"] = self.required
        return out

    def json_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": self.parameters, "required": self.required}


#: tool name -> (task, manager method, description, parameter names after the fixed ones)
_TOOLS: dict[str, tuple[str, str, str, dict[str, dict[str, Any]], tuple[str, ...]]] = {
    "vision_generate_image": (
        "text_to_image",
        "generate_image",
        "Generate an image from a text prompt and return an artifact ref to it.",
        {"prompt": _PROMPT},
        ("negative_prompt", "width", "height", "seed", "steps", "guidance_scale"),
    ),
    "vision_edit_image": (
        "image_to_image",
        "edit_image",
        "Edit an existing image (optionally only where a mask is white) and return an artifact ref.",
        {"prompt": _PROMPT, "image": _IMAGE, "mask": {**_MASK, "default": None}},
        ("negative_prompt", "seed", "steps", "guidance_scale"),
    ),
    "vision_generate_video": (
        "text_to_video",
        "generate_video",
        "Generate a short video from a text prompt and return an artifact ref to it.",
        {"prompt": _PROMPT},
        ("negative_prompt", "width", "height", "num_frames", "fps", "seed", "steps"),
    ),
    "vision_image_to_video": (
        "image_to_video",
        "image_to_video",
        "Animate an image into a short video and return an artifact ref to it.",
        {"image": _IMAGE, "prompt": {**_PROMPT, "default": None}},
        ("negative_prompt", "num_frames", "fps", "seed", "steps"),
    ),
}

#: The tools offered when the backend is not known yet (lazy tools registered by the plugin).
_IMAGE_TOOLS = ("vision_generate_image", "vision_edit_image")


class _ToolRuntime:
    """The manager and store the tools share; built on first call when none was given."""

    def __init__(self, manager: VisionManager | None, model_id: str | None):
        self._manager = manager
        self._model_id = model_id
        self._store: MediaStore | None = None
        self._lock = threading.Lock()

    def resolve(self) -> tuple[VisionManager, MediaStore]:
        with self._lock:
            if self._manager is None:
                from ._abstractcore_config import resolve_backend_plan

                self._manager = VisionManager(backend=resolve_backend_plan().build(self._model_id))
            if self._store is None:
                from ..artifacts import LocalAssetStore

                self._store = self._manager.store or LocalAssetStore()
            return self._manager, self._store

    def run(self, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
        manager, store = self.resolve()
        for name in ("image", "mask"):
            if arguments.get(name) is not None:
                arguments[name] = _read_image_argument(arguments[name], store)
        result = getattr(manager, method)(**{k: v for k, v in arguments.items() if v is not None})
        return result if is_artifact_ref(result) else deliver(result, store)


def _read_image_argument(value: Any, store: MediaStore) -> Any:
    """An LLM names images by artifact id (or ref) or by path; bytes are read from the store."""
    if isinstance(value, str) and os.path.isfile(os.path.expanduser(value)):
        return value
    return store.load_bytes(value if is_artifact_ref(value) else str(value))


def _parameters(fixed: dict[str, dict[str, Any]], optional: tuple[str, ...], spec: Any) -> dict:
    params = {name: dict(schema) for name, schema in fixed.items()}
    for name in optional:
        schema = {**_OPTIONAL_PARAMS[name], "default": None}
        limits = spec.params.get(name) if spec is not None else None
        if limits is not None:
            schema.update({k: v for k, v in (("minimum", limits.min), ("maximum", limits.max)) if v is not None})
            if limits.default is not None:
                schema["default"] = limits.default
        params[name] = schema
    return params


def _offered_tasks(manager: VisionManager | None, model_id: str | None) -> tuple[set[str] | None, Any]:
    """Tasks to offer (``None``: unknown backend, offer image tools) and the model's registry entry."""
    tasks = None if manager is None else set(manager.backend.get_capabilities().supported_tasks)
    if not model_id:
        return tasks, None
    from ..model_capabilities import VisionModelCapabilitiesRegistry

    registry = manager.registry if manager is not None else VisionModelCapabilitiesRegistry()
    resolved = registry.resolve(model_id)
    if resolved is None:
        return tasks, None
    caps = registry.get(resolved)
    return (set(caps.tasks) if tasks is None else tasks & set(caps.tasks)), caps


def make_vision_tools(vision_manager: VisionManager | None = None, model_id: str | None = None) -> list[VisionTool]:
    """Agent tools over ``vision_manager`` that return artifact refs.

    Offered: image generation and editing, plus video tools when the backend supports them.
    ``model_id`` (default: the manager's) narrows the tools to what the capability registry says
    the model can do and puts its parameter limits into the schemas. Results go to the manager's
    store, or a :class:`~abstractvision.artifacts.LocalAssetStore` when it has none. Without a
    manager the tools build one from the environment on their first call (``ABSTRACTVISION_*``),
    running ``model_id`` when given.
    """
    model_id = model_id or (vision_manager.model_id if vision_manager is not None else None)
    runtime = _ToolRuntime(vision_manager, model_id)
    tasks, caps = _offered_tasks(vision_manager, model_id)
    tools = []
    for name, (task, method, description, fixed, optional) in _TOOLS.items():
        if (task not in tasks) if tasks is not None else (name not in _IMAGE_TOOLS):
            continue
        spec = caps.tasks.get(task) if caps is not None else None
        parameters = _parameters(fixed, optional, spec)
        tools.append(VisionTool(name, description, parameters, _bind(runtime, name, method, parameters)))
    return tools


def _bind(runtime: _ToolRuntime, name: str, method: str, parameters: dict) -> Callable[..., dict[str, Any]]:
    def run_tool(**arguments: Any) -> dict[str, Any]:
        unknown = sorted(set(arguments) - set(parameters))
        if unknown:
            raise InvalidRequestError(
                f"{name}: unknown argument(s) {', '.join(unknown)}; accepted: {', '.join(parameters)}",
                field=unknown[0],
            )
        return runtime.run(method, arguments)

    run_tool.__name__ = name
    run_tool.__doc__ = _TOOLS[name][2]
    return run_tool


__all__ = ["VisionTool", "make_vision_tools"]
