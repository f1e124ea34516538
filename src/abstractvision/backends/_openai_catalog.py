"""Reading a ``GET /models`` catalog and keeping the models fit for a task.

Why heuristics: the OpenAI-shaped ``/models`` list has no standard capability field. Some servers
advertise ``capabilities``, ``tasks`` or ``modalities``; those hints are trusted when present. With
no hints, an unknown endpoint keeps every entry (it may serve any model), while OpenAI's catalog,
which lists hundreds of text models, keeps only its image and video families.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidProviderResponseError
from ..types import IMAGE_TASKS, TASKS, VIDEO_TASKS, ProviderModelInfo
from ._openai_shapes import known_family

#: Hint words (normalized) -> the tasks they advertise.
_HINTS: dict[str, tuple[str, ...]] = {
    **{task: (task,) for task in TASKS},
    "image": IMAGE_TASKS,
    "images": IMAGE_TASKS,
    "image_generation": ("text_to_image",),
    "image_edit": ("image_to_image",),
    "image_editing": ("image_to_image",),
    "txt2img": ("text_to_image",),
    "img2img": ("image_to_image",),
    "video": VIDEO_TASKS,
    "video_generation": ("text_to_video",),
    "txt2vid": ("text_to_video",),
    "img2vid": ("image_to_video",),
}

_HINT_KEYS = ("capabilities", "tasks", "modalities", "output_modalities", "task", "type")


def _hint_words(entry: dict[str, Any]) -> list[str]:
    words: list[str] = []
    for key in _HINT_KEYS:
        value = entry.get(key)
        if isinstance(value, dict):  # {"text_to_image": true, ...}
            value = [name for name, enabled in value.items() if enabled]
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            words += [str(v).strip().lower().replace("-", "_").replace(" ", "_") for v in value]
    return words


def model_tasks(entry: dict[str, Any], openai: bool) -> tuple[str, ...]:
    """Tasks an entry advertises (hints first, then OpenAI's families by id); ``()`` when unknown."""
    tasks: list[str] = []
    for word in _hint_words(entry):
        tasks += [t for t in _HINTS.get(word, ()) if t not in tasks]
    if not tasks and openai:
        family = known_family(str(entry.get("id", "")))
        return family.tasks if family is not None else ()
    return tuple(tasks)


def parse_catalog(payload: Any, source: str, openai: bool) -> list[ProviderModelInfo]:
    entries = payload.get("data") if isinstance(payload, dict) else payload
    if not isinstance(entries, list):
        raise InvalidProviderResponseError(f"{source} did not answer a model list: {str(payload)[:300]!r}", status=200)
    models = []
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("id"):
            continue
        created = entry.get("created")
        models.append(
            ProviderModelInfo(
                id=str(entry["id"]),
                object=entry.get("object"),
                created=created if isinstance(created, int) else None,
                owned_by=entry.get("owned_by"),
                capabilities=model_tasks(entry, openai),
                raw=entry,
            )
        )
    return models


def filter_models(models: list[ProviderModelInfo], task: str | None, openai: bool) -> list[ProviderModelInfo]:
    """Models fit for ``task``: advertised ones; entries with no hints at all only on unknown endpoints."""
    if task is None:
        return models
    return [m for m in models if task in m.capabilities or (not openai and not _hint_words(m.raw))]


__all__ = ["filter_models", "model_tasks", "parse_catalog"]
