"""LoRA adapters on the server: the ``lora`` field read, then held to the backend's own list.

Why an allow-list: an adapter's ``source`` is a path or a repo id, and an engine loads whatever it
names. A client must not make the server read its files (``/etc/passwd``, another user's folder) or
fetch repos, so the server takes only the adapters its backend lists (``GET /v1/adapters``), by id,
and refuses anything else with 404 ``adapter_not_found`` before a job exists.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..backends.base_backend import UPSCALE_TASK
from ..errors import InvalidRequestError
from ..lora import as_lora_adapters, describe
from ..types import LoRAAdapterSpec, ProviderAdapterInfo
from .errors import APIError

#: Tasks whose requests carry adapters (the manager's image requests).
LORA_TASKS = ("text_to_image", "image_to_image")

#: Where a client learns what it may ask for.
_LISTING = "GET /v1/adapters lists the adapters this server offers"


def read_lora(task: str, value: Any) -> list[dict[str, Any]]:
    """The ``lora`` field (a list of objects or ``NAME[:SCALE]`` words; from a form, words or JSON
    arrays as text) as adapter dicts for the manager; 400 naming ``lora`` when malformed."""
    if task not in LORA_TASKS:
        why = "an upscale" if task == UPSCALE_TASK else task
        raise APIError(400, f"lora: {why} takes no LoRA adapters (only {', '.join(LORA_TASKS)})", param="lora")
    items: list[Any] = []
    for item in value if isinstance(value, list) else [value]:
        items.extend(_from_text(item) if isinstance(item, str) and item.lstrip()[:1] in ("[", "{") else [item])
    try:
        return describe(as_lora_adapters(items, "lora"))
    except InvalidRequestError as exc:
        raise APIError(400, str(exc), param="lora") from None


def _from_text(text: str) -> list[Any]:
    """A form field holding JSON: an array of adapters, or one adapter object."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise APIError(400, f"lora: not valid JSON ({exc})", param="lora") from None
    return value if isinstance(value, list) else [value]


def refuse_unsupported(backend_name: str, supports_lora: bool) -> None:
    """400 ``unsupported`` for adapters on a backend that takes none (before anything is listed)."""
    if not supports_lora:
        raise APIError(
            400,
            f"lora: the {backend_name} backend takes no LoRA adapters (GET /v1/capabilities: features.lora)",
            param="lora",
            code="unsupported",
        )


def allow_listed(adapters: Sequence[dict[str, Any]], offered: Sequence[ProviderAdapterInfo]) -> list[dict[str, Any]]:
    """``adapters`` (from :func:`read_lora`) if the backend offers each one, else 404 naming it.

    An adapter is offered when its ``source`` is a listed id and its ``weight_name`` (if given) is
    that entry's; ``subfolder`` is never offered. A listed entry's ``weight_name`` is filled in, so
    the engine loads the very file that was listed.
    """
    allowed = []
    for index, adapter in enumerate(adapters):
        spec = LoRAAdapterSpec(**adapter)
        matches = [
            info
            for info in offered
            if info.id == spec.source and spec.weight_name in (None, info.weight_name) and spec.subfolder is None
        ]
        if not matches:
            shown = repr(spec.source)
            for part in ("weight_name", "subfolder"):
                if getattr(spec, part):
                    shown += f" with {part} {getattr(spec, part)!r}"
            raise APIError(
                404,
                f"lora[{index}]: adapter {shown} is not offered by this server; {_LISTING}",
                param="lora",
                code="adapter_not_found",
            )
        if spec.weight_name is None and len(matches) == 1 and matches[0].weight_name:
            adapter = {**adapter, "weight_name": matches[0].weight_name}
        allowed.append(adapter)
    return allowed


def adapter_entry(info: ProviderAdapterInfo) -> dict[str, Any]:
    """One ``GET /v1/adapters`` item. The file's path stays on the server: clients pick adapters by id."""
    return {"id": info.id, "object": "adapter", "weight_name": info.weight_name, "size_bytes": info.size_bytes}


__all__ = ["LORA_TASKS", "adapter_entry", "allow_listed", "read_lora", "refuse_unsupported"]
