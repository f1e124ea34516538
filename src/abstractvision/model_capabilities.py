"""What each well-known model can do, from a packaged JSON file.

The registry answers "can model X do task Y, and with which parameter defaults and limits?"
without importing any engine. The file is checked against :data:`SCHEMA` when loaded, and a
malformed entry is reported by its path (``models["x"].tasks["y"].params["width"].max``) instead of
surfacing later as a ``KeyError``. ``ABSTRACTVISION_MODEL_CAPABILITIES_PATH`` replaces the file.

File shape::

    {"schema_version": 1,
     "tasks": {"text_to_image": {"description": "..."}, ...},
     "models": {"<model id>": {"provider": "...", "family": "...", "license": "...", "notes": "...",
                               "aliases": ["..."],
                               "tasks": {"text_to_image": {"params": {"width": {"default": 1024,
                                         "min": 256, "max": 2048, "multiple_of": 16}, ...},
                                         "notes": "..."}}}}}
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import CapabilityNotSupportedError, CapabilityRegistryError, UnknownModelError
from .types import TASKS

SCHEMA_VERSION = 1

#: Allowed keys and their JSON types, per level (the schema the file is validated against).
SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "root": {"schema_version": (int,), "tasks": (dict,), "models": (dict,)},
    "task": {"description": (str,)},
    "model": {
        "provider": (str,),
        "family": (str,),
        "license": (str,),
        "notes": (str,),
        "aliases": (list,),
        "tasks": (dict,),
    },
    "model_task": {"params": (dict,), "notes": (str,), "requires": (list,)},
    "param": {
        "default": (int, float, str, bool, type(None)),
        "min": (int, float),
        "max": (int, float),
        "multiple_of": (int,),
        "choices": (list,),
        "description": (str,),
    },
}
_REQUIRED = {"root": ("schema_version", "tasks", "models"), "model": ("provider", "tasks")}


@dataclass(frozen=True)
class ParamSpec:
    """Default and limits of one request parameter for one model and task."""

    name: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    multiple_of: int | None = None
    choices: tuple[Any, ...] = ()
    description: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    task: str
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    notes: str | None = None
    requires: tuple[str, ...] = ()

    def defaults(self) -> dict[str, Any]:
        """``{param: default}`` for the params that declare one."""
        return {name: p.default for name, p in self.params.items() if p.default is not None}


@dataclass(frozen=True)
class ModelCapabilities:
    id: str
    provider: str
    tasks: Mapping[str, TaskSpec]
    family: str | None = None
    license: str | None = None
    notes: str | None = None
    aliases: tuple[str, ...] = ()

    def supports(self, task: str) -> bool:
        return task in self.tasks


def _check_keys(obj: Any, level: str, where: str) -> None:
    if not isinstance(obj, dict):
        raise CapabilityRegistryError(f"{where} must be an object, got {type(obj).__name__}")
    allowed = SCHEMA[level]
    for key, value in obj.items():
        if key not in allowed:
            raise CapabilityRegistryError(f"{where}.{key} is not a known field (allowed: {', '.join(allowed)})")
        if not isinstance(value, allowed[key]) or (isinstance(value, bool) and bool not in allowed[key]):
            names = "/".join(t.__name__ for t in allowed[key])
            raise CapabilityRegistryError(f"{where}.{key} must be {names}, got {type(value).__name__}")
    for key in _REQUIRED.get(level, ()):
        if key not in obj:
            raise CapabilityRegistryError(f"{where} is missing the required field {key!r}")


def _parse_param(name: str, raw: Any, where: str) -> ParamSpec:
    _check_keys(raw, "param", where)
    lo, hi = raw.get("min"), raw.get("max")
    for key in ("min", "max"):
        if key in raw and not math.isfinite(raw[key]):
            raise CapabilityRegistryError(f"{where}.{key} must be finite")
    if lo is not None and hi is not None and lo > hi:
        raise CapabilityRegistryError(f"{where}: min {lo} is greater than max {hi}")
    if raw.get("multiple_of") is not None and raw["multiple_of"] < 1:
        raise CapabilityRegistryError(f"{where}.multiple_of must be >= 1")
    default = raw.get("default")
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if (lo is not None and default < lo) or (hi is not None and default > hi):
            raise CapabilityRegistryError(f"{where}.default {default} is outside [{lo}, {hi}]")
    choices = tuple(raw.get("choices", ()))
    if choices and default is not None and default not in choices:
        raise CapabilityRegistryError(f"{where}.default {default!r} is not one of its choices")
    return ParamSpec(name, default, lo, hi, raw.get("multiple_of"), choices, raw.get("description"))


def parse_registry(data: Any, source: str = "registry") -> tuple[dict[str, str], dict[str, ModelCapabilities]]:
    """Validate the whole document and build the typed entries; errors name the offending entry."""
    _check_keys(data, "root", source)
    if data["schema_version"] != SCHEMA_VERSION:
        raise CapabilityRegistryError(
            f"{source}.schema_version is {data['schema_version']}, this abstractvision reads {SCHEMA_VERSION}"
        )
    tasks: dict[str, str] = {}
    for task, raw in data["tasks"].items():
        _check_keys(raw, "task", f"{source}.tasks[{task!r}]")
        tasks[task] = raw.get("description", "")
    models: dict[str, ModelCapabilities] = {}
    for model_id, raw in data["models"].items():
        where = f"{source}.models[{model_id!r}]"
        _check_keys(raw, "model", where)
        specs: dict[str, TaskSpec] = {}
        for task, raw_task in raw["tasks"].items():
            task_where = f"{where}.tasks[{task!r}]"
            if task not in tasks:
                raise CapabilityRegistryError(f"{task_where}: unknown task (known: {', '.join(tasks)})")
            _check_keys(raw_task, "model_task", task_where)
            params = {
                name: _parse_param(name, p, f"{task_where}.params[{name!r}]")
                for name, p in raw_task.get("params", {}).items()
            }
            specs[task] = TaskSpec(task, params, raw_task.get("notes"), tuple(raw_task.get("requires", ())))
        if not specs:
            raise CapabilityRegistryError(f"{where}.tasks is empty: a model must support at least one task")
        models[model_id] = ModelCapabilities(
            id=model_id,
            provider=raw["provider"],
            tasks=specs,
            family=raw.get("family"),
            license=raw.get("license"),
            notes=raw.get("notes"),
            aliases=tuple(raw.get("aliases", ())),
        )
    return tasks, models


class VisionModelCapabilitiesRegistry:
    """Query the capability file (packaged, or ``path``, or ``ABSTRACTVISION_MODEL_CAPABILITIES_PATH``)."""

    def __init__(self, path: str | Path | None = None, *, data: Mapping[str, Any] | None = None):
        if data is not None:
            source, document = "registry", data
        else:
            if path is None:
                from .config import load_settings

                path = load_settings().model_capabilities_path
            source, document = self._read(path)
        self.source = source
        self._tasks, self._models = parse_registry(document, source)
        self._lookup = {m.lower(): m for m in self._models}
        for model_id, caps in self._models.items():
            for alias in caps.aliases:
                self._lookup.setdefault(alias.lower(), model_id)

    @staticmethod
    def _read(path: str | Path | None) -> tuple[str, Any]:
        try:
            if path is None:
                text = (
                    resources.files("abstractvision")
                    .joinpath("assets/vision_model_capabilities.json")
                    .read_text("utf-8")
                )
                return "vision_model_capabilities.json", json.loads(text)
            return str(path), json.loads(Path(path).expanduser().read_text("utf-8"))
        except OSError as exc:
            raise CapabilityRegistryError(f"cannot read the capability registry {path}: {exc}") from None
        except ValueError as exc:
            raise CapabilityRegistryError(
                f"the capability registry {path or 'file'} is not valid JSON: {exc}"
            ) from None

    def __repr__(self) -> str:
        return f"VisionModelCapabilitiesRegistry(source={self.source!r}, models={len(self._models)})"

    def list_tasks(self) -> list[str]:
        return list(self._tasks)

    def task_description(self, task: str) -> str:
        self._check_task(task)
        return self._tasks[task]

    def list_models(self) -> list[str]:
        return sorted(self._models)

    def models_for_task(self, task: str) -> list[str]:
        self._check_task(task)
        return sorted(m for m, caps in self._models.items() if caps.supports(task))

    def resolve(self, model_id: str) -> str | None:
        """The registry's id for ``model_id`` (exact, case-insensitive or alias), else ``None``."""
        if model_id in self._models:
            return model_id
        return self._lookup.get(str(model_id).lower())

    def get(self, model_id: str) -> ModelCapabilities:
        resolved = self.resolve(model_id)
        if resolved is None:
            close = difflib.get_close_matches(str(model_id), list(self._models), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else "; `abstractvision models` lists them"
            raise UnknownModelError(f"model {model_id!r} is not in the capability registry{hint}")
        return self._models[resolved]

    def supports(self, model_id: str, task: str) -> bool:
        self._check_task(task)
        resolved = self.resolve(model_id)
        return resolved is not None and self._models[resolved].supports(task)

    def require_support(self, model_id: str, task: str) -> TaskSpec:
        """The task spec, or :class:`UnknownModelError` / :class:`CapabilityNotSupportedError`."""
        self._check_task(task)
        caps = self.get(model_id)
        if not caps.supports(task):
            raise CapabilityNotSupportedError(
                f"model {caps.id!r} does not support {task} (it supports: {', '.join(caps.tasks)})"
            )
        return caps.tasks[task]

    def _check_task(self, task: str) -> None:
        if task not in self._tasks:
            raise CapabilityNotSupportedError(f"unknown task {task!r}; known tasks: {', '.join(self._tasks)}")


__all__ = [
    "ModelCapabilities",
    "ParamSpec",
    "SCHEMA",
    "TASKS",
    "TaskSpec",
    "VisionModelCapabilitiesRegistry",
    "parse_registry",
]
